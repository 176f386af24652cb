/*
 * bench.c - the small helpers every part of once-bench uses: progress
 * notes, the monotonic clock, paths, the subjects of the bench's records
 * and a ZeroMQ integer option.
 *
 * They live here rather than in main.c so that each phase's file can be
 * read (and linked) without the command line around it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "bench.h"
#include "once/once.h"

const char *const bench_field_names[BENCH_FIELDS] = {
    "name", "address", "registered_capital", "legal_representative"};

void note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "once-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

uint64_t seconds_ns(double s)
{
    return (uint64_t)(s * 1e9);
}

int path_join(char *out, size_t cap, const char *a, const char *b)
{
    return (size_t)snprintf(out, cap, "%s/%s", a, b) < cap ? 0 : -1;
}

void make_subject(unsigned long i, char out[19])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    int k;

    memcpy(out, "91350100", 8);
    for (k = 16; k >= 8; k--) {
        out[k] = alphabet[i % 31];
        i /= 31;
    }
    out[17] = '\0';
    once_uscc_check_char(out, &out[17]);
    out[18] = '\0';
}

int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof(value));
}
