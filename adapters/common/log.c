/*
 * log.c - an adapter's log lines, on stderr (journald under systemd).
 *
 * One line each: "TIME LEVEL PROGRAM: message", time in UTC with
 * milliseconds. Callers never put a subject (an ID number) or a field
 * value in a message: the log is read by operators who are not entitled
 * to personal data, so lines name files, callers, routes and codes only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "common.h"

static const char *log_program = "adapter";

void adapter_log_init(const char *program)
{
    log_program = program;
}

void adapter_log(const char *level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level, log_program,
            line);
}
