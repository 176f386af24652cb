/*
 * text_check.h - the one rule for text an outside party sets: clean UTF-8.
 *
 * Internal to libonce, the broker and the tools. See text_check.c and
 * docs/PROTOCOL.md section 9.4.
 */
#ifndef ONCE_TEXT_CHECK_H
#define ONCE_TEXT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: shortest form only,
 * no UTF-16 surrogates, nothing above U+10FFFF) holding no control or
 * line-breaking character: C0 (U+0000..U+001F, NUL included), DEL
 * (U+007F), C1 (U+0080..U+009F), LINE and PARAGRAPH SEPARATOR (U+2028,
 * U+2029), and the bidirectional embeddings, overrides and isolates
 * (U+202A..U+202E, U+2066..U+2069). The empty string is clean. */
bool text_is_clean_utf8(const uint8_t *s, size_t len);

/* The same for a C string of at most max bytes: false when longer. */
bool text_is_clean_string(const char *s, size_t max);

#endif
