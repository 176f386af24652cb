/*
 * checkpoint.c - the broker's signed statements about its log, in the C2SP
 * tlog-checkpoint format inside a C2SP signed note.
 *
 * A checkpoint says "the log named <origin> has <size> leaves and this root
 * hash", so any two parties holding checkpoints of the same log can demand a
 * consistency proof between them, and a department holding a receipt can
 * demand an inclusion proof. The text form is:
 *
 *     <origin>\n
 *     <size in decimal>\n
 *     <base64 of the 32-byte root>\n
 *     \n
 *     — <key name> <base64(key id[4] || Ed25519 signature[64])>\n
 *
 * The signature covers the body: every byte up to and including the newline
 * before the blank line. The key id, SHA-256(name || "\n" || 0x01 || key)
 * truncated to 4 bytes, lets a verifier skip lines by keys it does not know
 * (witness cosignatures) without trying each.
 *
 * The parser takes outside bytes, so it is strict: decimal sizes without
 * leading zeros, canonical base64, no control characters, bounded lengths.
 */
#include "checkpoint.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "text_fields.h"

#define SIGNATURE_PREFIX "\xe2\x80\x94 " /* U+2014 EM DASH, then a space */
#define SIGNATURE_PREFIX_BYTES 4
#define ROOT_BASE64_CHARS 44
#define SIGNATURE_BLOB_BYTES (CHECKPOINT_KEY_ID_BYTES + 64)

void checkpoint_key_id(const char *name, const uint8_t pk[32],
                       uint8_t id[CHECKPOINT_KEY_ID_BYTES])
{
    crypto_hash_sha256_state st;
    uint8_t digest[32];
    static const uint8_t separator_and_type[2] = {0x0a, 0x01};

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, separator_and_type, 2);
    crypto_hash_sha256_update(&st, pk, 32);
    crypto_hash_sha256_final(&st, digest);
    memcpy(id, digest, CHECKPOINT_KEY_ID_BYTES);
}

static int valid_name(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len > CHECKPOINT_MAX_ORIGIN)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)name[i] <= 0x20 || name[i] == 0x7f ||
            name[i] == '+')
            return 0;
    return 1;
}

bool checkpoint_origin_is_valid(const char *origin)
{
    const char *p;

    if (!valid_name(origin))
        return false;
    for (p = origin; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x7f || *p == ';' || *p == '#')
            return false;
    return true;
}

int checkpoint_sign(const checkpoint *c, const char *name,
                    const once_keypair *kp, char *out, size_t out_cap,
                    once_error *err)
{
    char root_b64[ROOT_BASE64_CHARS + 1];
    char sig_b64[sodium_base64_ENCODED_LEN(SIGNATURE_BLOB_BYTES,
                                           sodium_base64_VARIANT_ORIGINAL)];
    uint8_t blob[SIGNATURE_BLOB_BYTES];
    int body_len, total;

    if (!valid_name(c->origin) || !valid_name(name))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "checkpoint origin and key name must be 1..%d "
                              "printable characters without spaces or '+'",
                              CHECKPOINT_MAX_ORIGIN);
    sodium_bin2base64(root_b64, sizeof(root_b64), c->root, MERKLE_HASH_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    body_len = snprintf(out, out_cap, "%s\n%llu\n%s\n", c->origin,
                        (unsigned long long)c->size, root_b64);
    if (body_len < 0 || (size_t)body_len >= out_cap)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "checkpoint does not fit in %zu bytes", out_cap);
    checkpoint_key_id(name, kp->public_key, blob);
    crypto_sign_detached(blob + CHECKPOINT_KEY_ID_BYTES, NULL,
                         (const uint8_t *)out, (unsigned long long)body_len,
                         kp->secret_key);
    sodium_bin2base64(sig_b64, sizeof(sig_b64), blob, sizeof(blob),
                      sodium_base64_VARIANT_ORIGINAL);
    total = snprintf(out + body_len, out_cap - (size_t)body_len,
                     "\n" SIGNATURE_PREFIX "%s %s\n", name, sig_b64);
    if (total < 0 || (size_t)(body_len + total) >= out_cap)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "checkpoint does not fit in %zu bytes", out_cap);
    return body_len + total;
}

static int has_control_chars(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* Checks one signature line against (name, pk) over body. 1 when it is
 * by this key and verifies, 0 when it is by another key, -1 when it is by
 * this key and does not verify or the line is malformed. */
static int check_signature_line(const char *line, size_t len,
                                const char *name, const uint8_t pk[32],
                                const char *body, size_t body_len)
{
    uint8_t blob[SIGNATURE_BLOB_BYTES], id[CHECKPOINT_KEY_ID_BYTES];
    size_t name_len = strlen(name), got;
    const char *sig;

    if (len < SIGNATURE_PREFIX_BYTES ||
        memcmp(line, SIGNATURE_PREFIX, SIGNATURE_PREFIX_BYTES) != 0)
        return -1;
    line += SIGNATURE_PREFIX_BYTES;
    len -= SIGNATURE_PREFIX_BYTES;
    if (len <= name_len + 1 || memcmp(line, name, name_len) != 0 ||
        line[name_len] != ' ')
        return 0;
    sig = line + name_len + 1;
    if (text_base64_decode(blob, sizeof(blob), sig, len - name_len - 1,
                           &got) != 0 || got != sizeof(blob))
        return 0; /* another algorithm's signature under the same name */
    checkpoint_key_id(name, pk, id);
    if (memcmp(blob, id, CHECKPOINT_KEY_ID_BYTES) != 0)
        return 0;
    return crypto_sign_verify_detached(blob + CHECKPOINT_KEY_ID_BYTES,
                                       (const uint8_t *)body, body_len,
                                       pk) == 0
               ? 1
               : -1;
}

/* The first line of a note, when it can be an origin. */
static int origin_line(const char *note, size_t len, const char **line,
                       size_t *line_len)
{
    const char *p = note;

    if (text_next_line(&p, note + len, line, line_len) != 0 ||
        *line_len == 0 || *line_len > CHECKPOINT_MAX_ORIGIN ||
        has_control_chars(*line, *line_len))
        return -1;
    return 0;
}

int checkpoint_note_origin(const char *note, size_t len, char *out,
                           size_t cap)
{
    const char *line;
    size_t line_len;

    if (len > CHECKPOINT_MAX_NOTE || origin_line(note, len, &line,
                                                 &line_len) != 0 ||
        line_len >= cap)
        return -1;
    memcpy(out, line, line_len);
    out[line_len] = '\0';
    return 0;
}

/* The body: origin, size, root, extension lines, the blank line. On
 * success *p is past the blank line and *body_end at its start (the
 * signed bytes end with the newline before it). */
static int parse_body(const char *note, size_t len, checkpoint *c,
                      const char **p, const char **body_end, once_error *err)
{
    const char *end = note + len, *line;
    size_t line_len, got;

    if (len == 0 || len > CHECKPOINT_MAX_NOTE)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "checkpoint is empty or over %d bytes",
                              CHECKPOINT_MAX_NOTE);
    memset(c, 0, sizeof(*c));
    if (origin_line(note, len, &line, &line_len) != 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "checkpoint has no valid origin line");
    memcpy(c->origin, line, line_len);
    *p = line + line_len + 1;
    if (text_next_line(p, end, &line, &line_len) != 0 ||
        text_parse_u64(line, line_len, &c->size) != 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "checkpoint has no valid tree size line");
    if (text_next_line(p, end, &line, &line_len) != 0 ||
        text_base64_decode(c->root, MERKLE_HASH_BYTES, line, line_len,
                           &got) != 0 || got != MERKLE_HASH_BYTES)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "checkpoint has no valid root hash line");
    /* Extension lines, up to the blank line that ends the body. */
    for (;;) {
        if (text_next_line(p, end, &line, &line_len) != 0)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "checkpoint has no signature block");
        if (line_len == 0)
            break;
        if (has_control_chars(line, line_len))
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "checkpoint has a malformed extension line");
    }
    *body_end = line;
    return 0;
}

int checkpoint_parse_unverified(const char *note, size_t len, checkpoint *out,
                                once_error *err)
{
    const char *p, *body_end;

    return parse_body(note, len, out, &p, &body_end, err);
}

int checkpoint_verify(const char *note, size_t len, const char *name,
                      const uint8_t pk[32], checkpoint *out, once_error *err)
{
    const char *p, *end = note + len, *line, *body_end;
    size_t line_len;
    checkpoint c;
    int verified = 0, rc;

    if ((rc = parse_body(note, len, &c, &p, &body_end, err)) < 0)
        return rc;
    if (p == end)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "checkpoint has no signature lines");
    while (p < end) {
        if (text_next_line(&p, end, &line, &line_len) != 0)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "checkpoint signature block does not end "
                                  "with a newline");
        rc = check_signature_line(line, line_len, name, pk, note,
                                  (size_t)(body_end - note));
        if (rc < 0)
            return once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                                  "checkpoint signature by %s does not "
                                  "verify",
                                  name);
        verified |= rc;
    }
    if (!verified)
        return once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                              "checkpoint carries no signature by %s", name);
    if (strcmp(c.origin, name) != 0)
        return once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                              "checkpoint origin is not %s", name);
    *out = c;
    return 0;
}
