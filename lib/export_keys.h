/*
 * export_keys.h - keys.txt of a log export: the department keys an auditor
 * checks evidence with.
 *
 * Internal to libonce and its tools: the broker's export writes the file,
 * once-audit reads it. See export_keys.c.
 */
#ifndef ONCE_EXPORT_KEYS_H
#define ONCE_EXPORT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

/* One line: <id> <public key, 64 hex> <valid from> <valid until>
 * <active|suspended> <name...>, times in Unix milliseconds. */
typedef struct export_key {
    char id[ONCE_MAX_NAME + 1];
    uint8_t public_key[ONCE_PUBLIC_KEY_BYTES];
    uint64_t valid_from;
    uint64_t valid_until; /* 0 while the key is valid */
    bool suspended;
    const char *name;     /* free text for people, not NUL-terminated; */
    size_t name_len;      /* parsed: points into the line */
} export_key;

/* Parses one line (without its newline; a trailing '\r' is dropped). The
 * five fields are separated by spaces or tabs; the name is the rest of the
 * line and may be empty, but holds no control character. Returns 0, or
 * -ONCE_ERR_MALFORMED with the reason in err ("malformed: ..." or "bad
 * public key"). */
int export_keys_line_parse(const char *line, size_t len, export_key *out,
                           once_error *err);

/* Writes k as one line with its newline into out, NUL-terminated, with
 * control characters of the name replaced by '?' so that the line stays
 * one line. Returns its length, or a negative error (an invalid id, or
 * -ONCE_ERR_TOO_LARGE when out is too small). */
int export_keys_line_format(const export_key *k, char *out, size_t cap,
                            once_error *err);

/* Called for every line of a keys.txt that is neither blank nor a comment
 * ('#' first): with the key, or with problem set when the line does not
 * parse (key is then NULL). line_number counts from 1. A negative return
 * stops the walk and is returned by export_keys_parse. */
typedef int (*export_keys_fn)(void *arg, size_t line_number,
                              const export_key *key,
                              const once_error *problem);

/* Walks the lines of a keys.txt of len bytes (NUL bytes are ordinary bytes
 * to it, and a last line may lack its newline). Returns 0, or what fn
 * returned to stop it. */
int export_keys_parse(const char *text, size_t len, export_keys_fn fn,
                      void *arg);

#endif
