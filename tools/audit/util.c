/*
 * util.c - once-audit's small helpers.
 *
 * once-audit is a command-line program that runs to its end: running out
 * of memory there is not something to recover from but a reason to stop
 * with a message and the "problems" exit status, which is what the x*
 * allocators do, so that the checking code stays about checking. The rest
 * are the few ways every command writes times, kinds and decisions, kept
 * in one place so that the verify report, the proof summary and the
 * citizen's report cannot drift apart.
 */
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "monotonic.h"
#include "once/once.h"
#include "text_fields.h"

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "once-audit: out of memory\n");
        exit(EXIT_PROBLEMS);
    }
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        fprintf(stderr, "once-audit: out of memory\n");
        exit(EXIT_PROBLEMS);
    }
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "once-audit: out of memory\n");
        exit(EXIT_PROBLEMS);
    }
    return p;
}

double now_seconds(void)
{
    return (double)monotonic_ns() / 1e9;
}

void progress(const char *what, uint64_t done, uint64_t total, double *last)
{
    double t = now_seconds();

    if (t - *last < 1.0)
        return;
    *last = t;
    fprintf(stderr, "once-audit: %s: %" PRIu64 " of %" PRIu64 " leaves "
            "(%.0f%%)\n", what, done, total,
            total ? 100.0 * (double)done / (double)total : 100.0);
}

/* A command-line argument or file name as a u64 in plain decimal. */
int parse_u64(const char *s, uint64_t *out)
{
    return text_parse_u64(s, strlen(s), out);
}

void format_time(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    gmtime_r(&t, &tm);
    n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

const char *kind_name(int kind)
{
    return envelope_kind_name(kind, "other");
}

int load_public_key(const char *path, uint8_t pk[32])
{
    once_error err;

    if (once_public_key_load(pk, path, &err) < 0) {
        fprintf(stderr, "once-audit: %s\n", err.message);
        return -1;
    }
    return 0;
}

void put_decision(FILE *f, const Once__LogLeaf *leaf)
{
    fprintf(f, "%s%s%s",
            leaf->decision == ONCE__DECISION__DECISION_GRANTED ? "GRANTED"
                                                              : "REFUSED",
            leaf->error ? " " : "",
            leaf->error ? once_error_name((int)leaf->error) : "");
}
