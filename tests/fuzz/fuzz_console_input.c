/*
 * fuzz_console_input.c - what the console reads from a request (the
 * Authorization header, query numbers) and from its token file, on
 * arbitrary bytes (broker/console_input.c).
 *
 * The input is cut at its first NUL, as libmicrohttpd hands header and
 * argument values over as C strings. Beyond not crashing:
 *
 *   - console_bearer_ok accepts exactly "Bearer " (scheme in any case)
 *     followed by the token and nothing else: checked against a token of
 *     64 'a's, and against a token equal to the input's own last 64 bytes,
 *     so that the accepting path is reached too;
 *   - console_parse_number accepts exactly 1 to 20 decimal digits whose
 *     value is in range, and returns that value (checked against a
 *     digit-by-digit reference that detects overflow);
 *   - console_token_valid accepts exactly 64 lower-case hex digits,
 *     optionally followed by one '\n'.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool reference_bearer(const char *h, const uint8_t *token)
{
    return strlen(h) == 7 + CONSOLE_TOKEN_CHARS &&
           strncasecmp(h, "Bearer ", 7) == 0 &&
           memcmp(h + 7, token, CONSOLE_TOKEN_CHARS) == 0;
}

/* 1 to 20 digits with no overflow: 0 and the value, else -1. */
static int reference_number(const char *t, uint64_t *out)
{
    size_t len = strlen(t), i;
    uint64_t v = 0;

    if (len == 0 || len > 20)
        return -1;
    for (i = 0; i < len; i++) {
        unsigned d;

        if (t[i] < '0' || t[i] > '9')
            return -1;
        d = (unsigned)(t[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    uint8_t token[CONSOLE_TOKEN_CHARS];
    uint64_t got = 0, want = 0, min, max;
    size_t len, i;
    bool valid;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    len = strlen(text);

    memset(token, 'a', sizeof(token));
    if (console_bearer_ok(text, token) != reference_bearer(text, token))
        abort();
    if (len >= CONSOLE_TOKEN_CHARS) {
        memcpy(token, text + len - CONSOLE_TOKEN_CHARS, sizeof(token));
        if (console_bearer_ok(text, token) != reference_bearer(text, token))
            abort();
    }
    if (console_bearer_ok(NULL, token))
        abort();

    /* The range from the input's first bytes, so both ends are hit. */
    min = size > 0 ? data[0] % 4 : 0;
    max = size > 1 && data[1] % 2 ? UINT64_MAX : 1000;
    if (reference_number(text, &want) == 0 && want >= min && want <= max) {
        if (console_parse_number(text, min, max, &got) != 0 || got != want)
            abort();
    } else if (console_parse_number(text, min, max, &got) == 0) {
        abort();
    }

    valid = size == CONSOLE_TOKEN_CHARS ||
            (size == CONSOLE_TOKEN_CHARS + 1 &&
             text[CONSOLE_TOKEN_CHARS] == '\n');
    for (i = 0; valid && i < CONSOLE_TOKEN_CHARS; i++)
        valid = is_hex((char)data[i]);
    if (console_token_valid((const char *)data, size) != valid)
        abort();
    free(text);
    return 0;
}
