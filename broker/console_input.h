/*
 * console_input.h - what the console reads from outside: the bearer token
 * of a request, numbers in query arguments, the token file. Pure
 * functions, fuzzed by tests/fuzz/fuzz_console_input.c. See
 * console_input.c.
 */
#ifndef ONCE_CONSOLE_INPUT_H
#define ONCE_CONSOLE_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 32 random bytes as 64 hex digits. */
#define CONSOLE_TOKEN_CHARS 64

/* A token file's text: 64 lower-case hex digits, and an optional '\n'. */
bool console_token_valid(const char *text, size_t len);

/* True when header (an Authorization value, NUL-terminated, or NULL) is
 * "Bearer " (the scheme in any case) followed by exactly the token. The
 * token's bytes are compared in constant time. */
bool console_bearer_ok(const char *header,
                       const uint8_t token[CONSOLE_TOKEN_CHARS]);

/* A query argument that must be a decimal number in [min, max]: digits
 * only, no sign, no blanks. 0 with *out, or -1. */
int console_parse_number(const char *text, uint64_t min, uint64_t max,
                         uint64_t *out);

#endif
