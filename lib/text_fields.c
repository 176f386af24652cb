/*
 * text_fields.c - the fields the log's text formats are made of, parsed
 * strictly.
 *
 * An auditor reads a tlog-proof, keys.txt and checkpoints from files an
 * operator handed over, so every parser of them takes outside bytes. They
 * are built from the same few fields (lines, decimal numbers, base64), and
 * parsing each field one way in one place keeps them all equally strict:
 *
 *   - the input is a pointer and a length, never a C string, so a NUL byte
 *     in a file cannot cut a field short and make it mean something else;
 *   - a number has one spelling (no sign, no leading zero, no overflow) and
 *     so has base64 (padding, zero leftover bits), so a file that parses
 *     can be written back byte for byte, and two files that differ never
 *     parse to the same thing.
 */
#include "text_fields.h"

#include <string.h>

#include <sodium.h>

/* UINT64_MAX has 20 digits. */
#define U64_MAX_DIGITS 20

int text_next_line(const char **p, const char *end, const char **line,
                   size_t *line_len)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));

    if (nl == NULL)
        return -1;
    *line = *p;
    *line_len = (size_t)(nl - *p);
    *p = nl + 1;
    return 0;
}

int text_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > U64_MAX_DIGITS || (len > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

int text_base64_decode(uint8_t *out, size_t cap, const char *s, size_t len,
                       size_t *out_len)
{
    const char *end;
    size_t i;

    /* libsodium 1.0.18 reads a byte of 0x80 or more as the digit '/'
     * stands for (found by fuzz_tlog_proof), so it would give two
     * spellings to one value; only the alphabet gets that far. */
    for (i = 0; i < len; i++)
        if (!is_base64_char(s[i]))
            return -1;
    /* Without an ignore set libsodium stops at the first byte that is not
     * base64; the end pointer says whether that was the end of the field. */
    if (sodium_base642bin(out, cap, s, len, NULL, out_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    return end == s + len ? 0 : -1;
}
