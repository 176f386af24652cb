/*
 * checkpoint.h - C2SP tlog-checkpoint signed notes for the exchange log.
 *
 * Internal to libonce and its tools. See checkpoint.c.
 */
#ifndef ONCE_CHECKPOINT_H
#define ONCE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "merkle.h"
#include "once/once.h"

#define CHECKPOINT_MAX_ORIGIN 255
#define CHECKPOINT_MAX_NOTE 4096
#define CHECKPOINT_KEY_ID_BYTES 4

typedef struct checkpoint {
    char origin[CHECKPOINT_MAX_ORIGIN + 1];
    uint64_t size;
    merkle_hash root;
} checkpoint;

/* True when origin can name a once log: the checkpoint's first line and
 * the signature's key name (printable ASCII, no space, no '+', as the
 * signed-note format needs), 1..CHECKPOINT_MAX_ORIGIN long, and without
 * ';' or '#', so that it survives being written to once.conf. */
bool checkpoint_origin_is_valid(const char *origin);

/* SHA-256(name || 0x0A || 0x01 || public key)[:4], the C2SP signed-note key
 * id of an Ed25519 key. */
void checkpoint_key_id(const char *name, const uint8_t pk[32],
                       uint8_t id[CHECKPOINT_KEY_ID_BYTES]);

/* Writes the signed note (body, blank line, one signature line by `name`)
 * into out, NUL-terminated. Returns its length or a negative error. */
int checkpoint_sign(const checkpoint *c, const char *name,
                    const once_keypair *kp, char *out, size_t out_cap,
                    once_error *err);

/* The origin line of a note (however the rest of it looks) into out,
 * NUL-terminated: 0, or -1 when the first line cannot be an origin or does
 * not fit cap. */
int checkpoint_note_origin(const char *note, size_t len, char *out,
                           size_t cap);

/* The origin, size and root of a note, checking its format but no
 * signature: for tools that verify the signature later, against a key the
 * note does not name. */
int checkpoint_parse_unverified(const char *note, size_t len, checkpoint *out,
                                once_error *err);

/* Parses a signed note and checks that a signature line by `name` with the
 * key id of pk verifies over the body. Lines signed by other keys are
 * ignored, as the signed-note format allows. On success fills *out. */
int checkpoint_verify(const char *note, size_t len, const char *name,
                      const uint8_t pk[32], checkpoint *out, once_error *err);

#endif
