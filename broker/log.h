/*
 * log.h - onced's levelled log on stderr.
 *
 * One line per event: ISO-8601 UTC time, level, module, message. Safe to
 * call from any thread. See log.c.
 */
#ifndef ONCE_LOG_H
#define ONCE_LOG_H

#include <stdbool.h>

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3
} log_level;

/* Draws the key of log_subject_tag. Call once at start-up, after
 * sodium_init (once_init). */
void log_init(log_level level);
void log_set_level(log_level level);
bool log_enabled(log_level level);

/* "error", "warn", "info", "debug" -> 0 and *out; -1 otherwise. */
int log_level_parse(const char *name, log_level *out);
const char *log_level_name(log_level level);

void log_error(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_warn(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_info(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_debug(const char *module, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short tag for a subject in log lines: 12 hex digits of a keyed hash of
 * (type, subject) under a key drawn at start-up. Lines about one record can
 * be correlated within one run of the broker; the subject (a credit code or
 * an ID number) cannot be read back or confirmed by hashing guesses. */
#define LOG_SUBJECT_TAG_CHARS 13
void log_subject_tag(char out[LOG_SUBJECT_TAG_CHARS], const char *type,
                     const char *subject);

#endif
