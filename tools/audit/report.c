/*
 * report.c - the problems once-audit finds, one FAIL line each.
 *
 * An audit reports every problem it finds, not just the first, and in an
 * order that does not depend on the threads: each task of the thread pool
 * collects its problems in its own report, and the main thread prints the
 * reports in the order of the leaves (pool.c, verify_*.c). A line names
 * the leaf, tile or checkpoint it is about, so that an auditor can go and
 * look.
 */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "util.h"

void report_add(report *r, const char *fmt, ...)
{
    va_list ap;
    char *line;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    line = xmalloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(line, (size_t)len + 1, fmt, ap);
    va_end(ap);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->lines = xrealloc(r->lines, r->cap * sizeof(*r->lines));
    }
    r->lines[r->n++] = line;
}

/* Prints and empties r; returns how many problems it held. The lines
 * carry names, types and file names from the export: escaped, so that
 * none can end its line early or forge another (escape.c). */
size_t report_flush(report *r)
{
    size_t i, n = r->n;

    for (i = 0; i < r->n; i++) {
        fputs("FAIL ", stdout);
        audit_put_escaped(stdout, r->lines[i]);
        fputc('\n', stdout);
        free(r->lines[i]);
    }
    r->n = 0;
    return n;
}

void report_free(report *r)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
    memset(r, 0, sizeof(*r));
}
