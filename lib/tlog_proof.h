/*
 * tlog_proof.h - C2SP tlog-proof files: an inclusion proof that stands
 * alone, with the signed checkpoint it leads to.
 *
 * Internal to libonce and its tools (once-audit prove and check-proof).
 * See tlog_proof.c.
 */
#ifndef ONCE_TLOG_PROOF_H
#define ONCE_TLOG_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "merkle.h"
#include "merkle_nodes.h"
#include "once/once.h"

#define TLOG_PROOF_HEADER "c2sp.org/tlog-proof@v1"
/* The largest proof file read or written: the extra data (a leaf, at most
 * 64 KiB in once) and the checkpoint leave this far more room than they
 * need. */
#define TLOG_PROOF_MAX_BYTES (64 * 1024 * 1024)

typedef struct tlog_proof {
    bool has_extra;
    uint8_t *extra;       /* parsed: malloc'd, freed by tlog_proof_clear */
    size_t extra_len;
    uint64_t index;
    merkle_hash hashes[MERKLE_MAX_PROOF]; /* RFC 9162 order, deepest first */
    size_t nhashes;
    const char *note;     /* the signed checkpoint, not NUL-terminated; */
    size_t note_len;      /* parsed: points into the text */
} tlog_proof;

/* Parses a tlog-proof of len bytes into *out. The checkpoint is not
 * checked (checkpoint_verify does that) and out->note points into text.
 * Returns 0, or -ONCE_ERR_MALFORMED, -ONCE_ERR_TOO_LARGE (over
 * TLOG_PROOF_MAX_BYTES) or -ONCE_ERR_NO_MEMORY with the reason in err;
 * *out is then empty and owns nothing. */
int tlog_proof_parse(const char *text, size_t len, tlog_proof *out,
                     once_error *err);

/* Writes p in the tlog-proof format into *out (malloc'd, *out_len bytes, no
 * NUL), the extra line only when p->has_extra. Parsing the result gives p
 * back. Returns 0, or -ONCE_ERR_INVALID_ARGUMENT (too many hashes),
 * -ONCE_ERR_TOO_LARGE (over TLOG_PROOF_MAX_BYTES) or -ONCE_ERR_NO_MEMORY. */
int tlog_proof_format(const tlog_proof *p, char **out, size_t *out_len,
                      once_error *err);

/* Frees what tlog_proof_parse allocated and empties p. */
void tlog_proof_clear(tlog_proof *p);

#endif
