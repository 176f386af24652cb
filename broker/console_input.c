/*
 * console_input.c - the console's parsers of outside bytes.
 *
 * libmicrohttpd parses HTTP itself; what the console then reads from a
 * request is small but hostile all the same: the Authorization header, and
 * numbers in query arguments (/api/v1/exchanges?before=N&limit=M). The
 * token file is read here too, though only the operator writes it. They
 * are kept apart from the listener (console.c) and the answers
 * (console_api.c) as pure functions, so a fuzz target can call them on
 * arbitrary bytes (tests/fuzz/fuzz_console_input.c).
 *
 * The token comparison: the scheme is matched case-insensitively (RFC
 * 9110 11.1), then the rest must be exactly CONSOLE_TOKEN_CHARS bytes and
 * is compared with sodium_memcmp, whose time does not depend on where the
 * bytes differ. The length is no secret (it is always 64), so checking it
 * first tells an attacker nothing.
 *
 * Numbers: strtoull alone accepts a sign, leading blanks and wraps "-1"
 * to UINT64_MAX, so only digits are let through to it, at most 20 of them,
 * and overflow (ERANGE) and the range are checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "console_input.h"

#define BEARER "Bearer "
#define MAX_DIGITS 20

bool console_token_valid(const char *text, size_t len)
{
    size_t i;

    if (len == CONSOLE_TOKEN_CHARS + 1 && text[CONSOLE_TOKEN_CHARS] == '\n')
        len--;
    if (len != CONSOLE_TOKEN_CHARS)
        return false;
    for (i = 0; i < len; i++)
        if (!((text[i] >= '0' && text[i] <= '9') ||
              (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

bool console_bearer_ok(const char *header,
                       const uint8_t token[CONSOLE_TOKEN_CHARS])
{
    if (header == NULL || strncasecmp(header, BEARER, sizeof(BEARER) - 1) != 0)
        return false;
    header += sizeof(BEARER) - 1;
    if (strlen(header) != CONSOLE_TOKEN_CHARS)
        return false;
    return sodium_memcmp(header, token, CONSOLE_TOKEN_CHARS) == 0;
}

int console_parse_number(const char *text, uint64_t min, uint64_t max,
                         uint64_t *out)
{
    unsigned long long v;
    size_t i, len = strlen(text);
    char *end;

    if (len == 0 || len > MAX_DIGITS)
        return -1;
    for (i = 0; i < len; i++)
        if (text[i] < '0' || text[i] > '9')
            return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
