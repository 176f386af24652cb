/*
 * tlog_proof.c - C2SP tlog-proof (https://c2sp.org/tlog-proof): one file
 * that shows, offline, that an entry is in a log.
 *
 *     c2sp.org/tlog-proof@v1\n
 *     extra <base64 of application data>\n      (optional)
 *     index <decimal leaf index>\n
 *     <base64 of a 32-byte hash>\n              (the inclusion proof,
 *     ...                                        zero or more lines)
 *     \n
 *     <signed checkpoint note>
 *
 * once-audit prove writes one with the leaf as its extra data, so that a
 * department or a citizen can check an exchange with nothing but the file
 * and the broker's public key; check-proof reads it back. Both use this
 * one definition, so what prove writes is what check-proof reads.
 *
 * check-proof is handed the file by whoever wants to convince the auditor,
 * so the parser takes outside bytes: it reads within the given length only
 * (NUL bytes are not terminators), checks every length before it copies,
 * and accepts one spelling of each field (text_fields.c). Every file it
 * accepts is therefore the one tlog_proof_format writes for what it parsed,
 * byte for byte, which the fuzz target checks. The checkpoint is not
 * checked here: it is kept as bytes for checkpoint_verify.
 */
#include "tlog_proof.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "text_fields.h"

#define HEADER_BYTES (sizeof(TLOG_PROOF_HEADER) - 1)
#define EXTRA_PREFIX "extra "
#define INDEX_PREFIX "index "
#define PREFIX_BYTES 6
#define HASH_BASE64_CHARS 44
/* "index " and a u64 in decimal. */
#define INDEX_LINE_MAX (PREFIX_BYTES + 20)

static int has_prefix(const char *line, size_t len, const char *prefix)
{
    return len >= PREFIX_BYTES && memcmp(line, prefix, PREFIX_BYTES) == 0;
}

/* Decodes the base64 after "extra " into a malloc'd buffer. */
static int parse_extra(const char *b64, size_t len, tlog_proof *p,
                       once_error *err)
{
    /* Base64 decodes to at most 3 bytes per 4 characters. */
    size_t cap = len / 4 * 3 + 3;

    p->extra = malloc(cap);
    if (p->extra == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY,
                              "no memory for the extra data");
    if (text_base64_decode(p->extra, cap, b64, len, &p->extra_len) < 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "extra line is not base64");
    p->has_extra = true;
    return 0;
}

static int ends_early(once_error *err)
{
    return once_error_set(err, ONCE_ERR_MALFORMED,
                          "ends before the checkpoint");
}

static int parse_lines(const char *text, size_t len, tlog_proof *p,
                       once_error *err)
{
    const char *s = text, *end = text + len, *line;
    size_t line_len, got;
    int rc;

    if (len > TLOG_PROOF_MAX_BYTES)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "is over %d bytes",
                              TLOG_PROOF_MAX_BYTES);
    if (text_next_line(&s, end, &line, &line_len) < 0)
        return ends_early(err);
    if (line_len != HEADER_BYTES ||
        memcmp(line, TLOG_PROOF_HEADER, HEADER_BYTES) != 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "does not start with " TLOG_PROOF_HEADER);
    if (text_next_line(&s, end, &line, &line_len) < 0)
        return ends_early(err);
    if (has_prefix(line, line_len, EXTRA_PREFIX)) {
        rc = parse_extra(line + PREFIX_BYTES, line_len - PREFIX_BYTES, p,
                         err);
        if (rc < 0)
            return rc;
        if (text_next_line(&s, end, &line, &line_len) < 0)
            return ends_early(err);
    }
    if (!has_prefix(line, line_len, INDEX_PREFIX) ||
        text_parse_u64(line + PREFIX_BYTES, line_len - PREFIX_BYTES,
                       &p->index) < 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "has no valid index line");
    for (;;) {
        if (text_next_line(&s, end, &line, &line_len) < 0)
            return ends_early(err);
        if (line_len == 0)
            break;
        if (p->nhashes == MERKLE_MAX_PROOF ||
            text_base64_decode(p->hashes[p->nhashes], MERKLE_HASH_BYTES,
                               line, line_len, &got) < 0 ||
            got != MERKLE_HASH_BYTES)
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "proof line %zu is not a base64 hash",
                                  p->nhashes + 1);
        p->nhashes++;
    }
    p->note = s;
    p->note_len = (size_t)(end - s);
    return 0;
}

int tlog_proof_parse(const char *text, size_t len, tlog_proof *out,
                     once_error *err)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = parse_lines(text, len, out, err);
    if (rc < 0)
        tlog_proof_clear(out);
    return rc;
}

int tlog_proof_format(const tlog_proof *p, char **out, size_t *out_len,
                      once_error *err)
{
    size_t extra_chars = 0, cap, len = 0, i;
    char *text;
    int n;

    if (p->nhashes > MERKLE_MAX_PROOF)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a proof holds at most %d hashes",
                              MERKLE_MAX_PROOF);
    /* Bound the parts before adding them up, so that the sum cannot
     * wrap. */
    if (p->extra_len > TLOG_PROOF_MAX_BYTES ||
        p->note_len > TLOG_PROOF_MAX_BYTES)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "a tlog-proof is at most %d bytes",
                              TLOG_PROOF_MAX_BYTES);
    /* Each line with its newline; the base64 writer's NUL lands where the
     * newline goes, and the index line has room for snprintf's NUL. */
    if (p->has_extra)
        extra_chars = sodium_base64_ENCODED_LEN(
            p->extra_len, sodium_base64_VARIANT_ORIGINAL) - 1;
    cap = HEADER_BYTES + 1 +
          (p->has_extra ? PREFIX_BYTES + extra_chars + 1 : 0) +
          INDEX_LINE_MAX + 2 + p->nhashes * (HASH_BASE64_CHARS + 1) + 1 +
          p->note_len;
    text = malloc(cap);
    if (text == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY,
                              "no memory for a tlog-proof");
    memcpy(text, TLOG_PROOF_HEADER "\n", HEADER_BYTES + 1);
    len = HEADER_BYTES + 1;
    if (p->has_extra) {
        memcpy(text + len, EXTRA_PREFIX, PREFIX_BYTES);
        len += PREFIX_BYTES;
        sodium_bin2base64(text + len, extra_chars + 1, p->extra,
                          p->extra_len, sodium_base64_VARIANT_ORIGINAL);
        len += extra_chars;
        text[len++] = '\n';
    }
    n = snprintf(text + len, cap - len, INDEX_PREFIX "%" PRIu64 "\n",
                 p->index);
    if (n < 0 || (size_t)n >= cap - len) {
        free(text);
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "cannot format the index line");
    }
    len += (size_t)n;
    for (i = 0; i < p->nhashes; i++) {
        sodium_bin2base64(text + len, HASH_BASE64_CHARS + 1, p->hashes[i],
                          MERKLE_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL);
        len += HASH_BASE64_CHARS;
        text[len++] = '\n';
    }
    text[len++] = '\n';
    if (p->note_len > 0)
        memcpy(text + len, p->note, p->note_len);
    len += p->note_len;
    if (len > TLOG_PROOF_MAX_BYTES) {
        free(text);
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "a tlog-proof is at most %d bytes",
                              TLOG_PROOF_MAX_BYTES);
    }
    *out = text;
    *out_len = len;
    return 0;
}

void tlog_proof_clear(tlog_proof *p)
{
    free(p->extra);
    memset(p, 0, sizeof(*p));
}
