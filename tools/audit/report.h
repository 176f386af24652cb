/*
 * report.h - the problems once-audit finds, one FAIL line each.
 *
 * See report.c.
 */
#ifndef ONCE_TOOLS_AUDIT_REPORT_H
#define ONCE_TOOLS_AUDIT_REPORT_H

#include <stddef.h>

typedef struct report {
    char **lines;
    size_t n, cap;
} report;

/* Adds one problem, a line formatted as printf would. nonnull: without
 * it, UBSan's null check on fmt makes GCC see a null format string. */
__attribute__((format(printf, 2, 3), nonnull(1, 2))) void
report_add(report *r, const char *fmt, ...);

/* Prints the problems as "FAIL " lines, escaped, and empties r; returns
 * how many it held. */
size_t report_flush(report *r);

/* Frees r and its lines without printing them. */
void report_free(report *r);

#endif
