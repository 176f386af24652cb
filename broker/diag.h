/*
 * diag.h - onced's levelled diagnostics on stderr (not the exchange log,
 * which is auditlog.h).
 *
 * One line per event: ISO-8601 UTC time, level, module, message. Safe to
 * call from any thread. See diag.c.
 */
#ifndef ONCE_DIAG_H
#define ONCE_DIAG_H

#include <stdbool.h>

typedef enum diag_level {
    DIAG_LEVEL_ERROR = 0,
    DIAG_LEVEL_WARN = 1,
    DIAG_LEVEL_INFO = 2,
    DIAG_LEVEL_DEBUG = 3
} diag_level;

/* Draws the key of diag_subject_tag. Call once at start-up, after
 * sodium_init (once_init). */
void diag_init(diag_level level);
void diag_set_level(diag_level level);
bool diag_enabled(diag_level level);

/* "error", "warn", "info", "debug" -> 0 and *out; -1 otherwise. */
int diag_level_parse(const char *name, diag_level *out);
const char *diag_level_name(diag_level level);

void diag_error(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void diag_warn(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void diag_info(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void diag_debug(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short tag for a subject in log lines: 12 hex digits of a keyed hash of
 * (type, subject) under a key drawn at start-up. Lines about one record can
 * be correlated within one run of the broker; the subject (a credit code or
 * an ID number) cannot be read back or confirmed by hashing guesses. */
#define DIAG_SUBJECT_TAG_CHARS 13
void diag_subject_tag(char out[DIAG_SUBJECT_TAG_CHARS], const char *type,
                     const char *subject);

#endif
