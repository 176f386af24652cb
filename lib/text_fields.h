/*
 * text_fields.h - strict parsing of the fields of the log's line-based text
 * formats (tlog-proof, keys.txt, command-line numbers).
 *
 * Internal to libonce and its tools. See text_fields.c.
 */
#ifndef ONCE_TEXT_FIELDS_H
#define ONCE_TEXT_FIELDS_H

#include <stddef.h>
#include <stdint.h>

/* The next line of [*p, end): sets *line and *line_len (without the
 * newline) and moves *p past the newline. 0, or -1 when no newline is
 * left. */
int text_next_line(const char **p, const char *end, const char **line,
                   size_t *line_len);

/* A u64 in decimal, digits only, no leading zero (but "0"), no overflow:
 * exactly s[0..len). 0, or -1. */
int text_parse_u64(const char *s, size_t len, uint64_t *out);

/* Standard base64 with padding, canonical (only the alphabet, no nonzero
 * leftover bits), all of s[0..len): decodes into out (room for cap bytes)
 * and sets *out_len. 0, or -1 when it is not base64 or does not fit. */
int text_base64_decode(uint8_t *out, size_t cap, const char *s, size_t len,
                       size_t *out_len);

#endif
