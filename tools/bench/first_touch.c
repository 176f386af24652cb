/*
 * first_touch.c - bench-first-touch: what a new process pays to read
 * random records of a large registry, batch after batch, without a broker.
 *
 * Why. At ten million records onced answered at 0.76 of its rate at ten
 * thousand, and its record read cost 30 us against 4 (docs/PERFORMANCE.md,
 * "Scale of the registry"). This tool reads the records the way a worker
 * does (registry_get_record, newest version, in one read transaction) from
 * a home that once-bench --keep left, in batches, and prints each batch's
 * wall, user and system microseconds and page faults a lookup. The first
 * batches of a fresh process show what a page's first touch costs and the
 * later ones the steady state; --touch first reads a byte of every cached
 * page of the map as onced now does at start (map_warm.c), and --populate
 * asks the kernel to map them (madvise MADV_POPULATE_READ) without reading
 * them from user space, which on a machine that shadows page tables is
 * not the same thing.
 *
 *     bench-first-touch HOME/db RECORDS BATCH BATCHES [--touch|--populate]
 *
 * RECORDS is how many the home holds (once-bench's subjects 0..RECORDS-1);
 * the lookups are uniform over them, from a fixed seed. Nothing is
 * written. Run it with no onced on the home, or beside one: it takes no
 * lock but LMDB's reader slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "bench.h"
#include "map_warm.h"
#include "registry.h"
#include "store.h"

static double micros(struct timeval t)
{
    return (double)t.tv_sec * 1e6 + (double)t.tv_usec;
}

/* Reads a byte of each cached page of the map, as onced's pass does, or
 * has the kernel map them all, and says how long it took. */
static int warm(const store *s, const char *how)
{
    const uint8_t *base;
    size_t bytes, looked;
    once_error err = {0};
    uint64_t started = monotonic_ns();

    if (map_warm_locate(s, &base, &bytes, &err) < 0) {
        fprintf(stderr, "bench-first-touch: %s\n", err.message);
        return -1;
    }
    if (strcmp(how, "--touch") == 0) {
        map_warm_read(base, bytes, NULL, &looked);
    } else if (madvise((void *)base, bytes, MADV_POPULATE_READ) != 0) {
        perror("bench-first-touch: madvise(MADV_POPULATE_READ)");
        return -1;
    }
    printf("%s over %zu MiB: %.1f s\n", how + 2, bytes >> 20,
           (double)(monotonic_ns() - started) / 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long records, batch, batches, b, i;
    once_error err = {0};
    MDB_txn *txn;
    MDB_val value;
    store s;
    int rc = 1;

    if (argc < 5 || argc > 6 ||
        (argc == 6 && strcmp(argv[5], "--touch") != 0 &&
         strcmp(argv[5], "--populate") != 0) ||
        (records = strtoul(argv[2], NULL, 10)) == 0 ||
        (batch = strtoul(argv[3], NULL, 10)) == 0 ||
        (batches = strtoul(argv[4], NULL, 10)) == 0) {
        fprintf(stderr, "usage: bench-first-touch HOME/db RECORDS BATCH "
                "BATCHES [--touch|--populate]\n");
        return 2;
    }
    if (store_open(&s, argv[1], 0, &err) < 0) {
        fprintf(stderr, "bench-first-touch: %s\n", err.message);
        return 1;
    }
    if (argc == 6 && warm(&s, argv[5]) < 0)
        goto out;
    if (store_begin(&s, 1, &txn, &err) < 0) {
        fprintf(stderr, "bench-first-touch: %s\n", err.message);
        goto out;
    }
    srand48(42);
    for (b = 0; b < batches; b++) {
        struct rusage r0, r1;
        uint64_t t0 = monotonic_ns();
        unsigned long found = 0;

        getrusage(RUSAGE_SELF, &r0);
        for (i = 0; i < batch; i++) {
            char subject[19];

            make_subject((unsigned long)(drand48() * (double)records),
                         subject);
            found += registry_get_record(txn, &s, BENCH_TYPE, subject, 0,
                                         &value, NULL, &err) == 0;
        }
        getrusage(RUSAGE_SELF, &r1);
        printf("batch %lu: %lu of %lu found; a lookup: wall %.2f us, user "
               "%.2f us, system %.2f us, minor faults %.3f, major %.4f\n",
               b, found, batch,
               (double)(monotonic_ns() - t0) / 1e3 / (double)batch,
               (micros(r1.ru_utime) - micros(r0.ru_utime)) / (double)batch,
               (micros(r1.ru_stime) - micros(r0.ru_stime)) / (double)batch,
               (double)(r1.ru_minflt - r0.ru_minflt) / (double)batch,
               (double)(r1.ru_majflt - r0.ru_majflt) / (double)batch);
        fflush(stdout);
    }
    mdb_txn_abort(txn);
    rc = 0;
out:
    store_close(&s);
    return rc;
}
