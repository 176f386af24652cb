/*
 * map_warm.c - at start, read one byte of every page of the database map
 * that is in the page cache, once, in a thread of its own.
 *
 * Why. LMDB reads through a shared read-only mmap(2) of data.mdb. A
 * process's first read of a page costs more than later ones: the kernel
 * maps the page (a minor fault, with up to 16 cached neighbours at once),
 * and the CPU walks page tables no cache holds yet. On a virtual machine
 * that shadows the guest's page tables (this project's test machines run
 * under PVM, whose guests see no hardware nested paging), every first
 * touch of a page from user space is also a trip through the hypervisor:
 * about 14 us a page, in user time, even after
 * madvise(MADV_POPULATE_READ) has made the kernel's own page tables
 * (measured: docs/PERFORMANCE.md, "Scale of the registry"). With ten
 * million records a request reads a random page of `records` that a new
 * process has rarely touched, so a restarted broker ran at 0.76 of its
 * small-registry rate for minutes: until it had touched some two million
 * pages, one request at a time. One sequential pass that reads a byte of
 * each page costs about 2 us a page on the same machine (9.9 s for 21 GB),
 * far less than the same pages first touched at random by requests, and
 * the lookups after it run at their steady speed from the start. On
 * hardware paging the pass costs a fraction of that.
 *
 * What it reads. Only pages the page cache holds already (mincore(2) on
 * each chunk before reading it), so the pass never reads the disk: on a
 * machine whose memory is smaller than the database it warms what is
 * cached and leaves the rest to requests, as before, instead of evicting
 * one part of the file to read another. Only the pages in use (up to the
 * highest page written, and never past the file's end: a read there would
 * be SIGBUS). The whole file, not only `records`: LMDB does not say which
 * pages belong to which table without walking its trees, and a walk in key
 * order would visit the pages in random file order at the random-touch
 * price; the log's pages are a little over half of a large home and cost
 * the pass the same again, once.
 *
 * Where the map is. LMDB does not hand out its map's address
 * (mdb_env_info's me_mapaddr is set only with MDB_FIXEDMAP), so the pass
 * finds it in /proc/self/maps: the mapping of the device and inode of
 * LMDB's own descriptor for data.mdb, from offset 0. onced never resizes
 * the map after it opened it, so the address stays valid until
 * store_close, before which onced stops the pass.
 *
 * The pass is an optimisation and nothing depends on it: a map that
 * cannot be found is logged and left cold. It runs at the thread's normal
 * priority: at the idle priority a broker started under full load would
 * never run it, and requests would pay the first touches instead, which
 * cost several times the CPU the pass does. It stops at the next chunk when
 * onced stops.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "diag.h"
#include "map_warm.h"
#include "monotonic.h"

/* Pages asked of mincore(2) at a time, and between looks at the stop
 * flag: 2 MiB of 4 KiB pages. */
#define CHUNK_PAGES 512

struct map_warm {
    pthread_t thread;
    const uint8_t *base;
    size_t bytes;
    atomic_bool stop;
};

int map_warm_locate(const store *s, const uint8_t **base, size_t *bytes,
                    once_error *err)
{
    unsigned long long start, end, offset, inode;
    unsigned major_no, minor_no;
    size_t bound, map_size;
    char line[PATH_MAX + 256];
    struct stat st;
    FILE *maps;
    int fd;

    *base = NULL;
    *bytes = 0;
    if (mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS || fstat(fd, &st) != 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot look at the "
                              "database file: %s", strerror(errno));
    if (store_usage_bound(s, &bound, &map_size) < 0)
        return once_error_set(err, ONCE_ERR_IO, "LMDB cannot tell the "
                              "pages in use");
    maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return once_error_set(err, ONCE_ERR_IO, "cannot read "
                              "/proc/self/maps: %s", strerror(errno));
    while (fgets(line, sizeof(line), maps) != NULL) {
        if (sscanf(line, "%llx-%llx %*s %llx %x:%x %llu", &start, &end,
                   &offset, &major_no, &minor_no, &inode) != 6)
            continue;
        if (inode == (unsigned long long)st.st_ino &&
            makedev(major_no, minor_no) == st.st_dev && offset == 0) {
            *base = (const uint8_t *)(uintptr_t)start;
            *bytes = bound;
            if (*bytes > (size_t)st.st_size)
                *bytes = (size_t)st.st_size;
            if (*bytes > end - start)
                *bytes = end - start;
            break;
        }
    }
    fclose(maps);
    if (*base == NULL)
        return once_error_set(err, ONCE_ERR_NOT_FOUND, "the database's map "
                              "is not in /proc/self/maps");
    return 0;
}

size_t map_warm_read(const uint8_t *map, size_t bytes, atomic_bool *stop,
                     size_t *looked)
{
    const volatile uint8_t *base = map;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), offset, read = 0, i, n;
    size_t len;
    unsigned char resident[CHUNK_PAGES];

    *looked = 0;
    for (offset = 0; offset < bytes; offset += len) {
        if (stop != NULL &&
            atomic_load_explicit(stop, memory_order_relaxed))
            break;
        len = bytes - offset;
        if (len > CHUNK_PAGES * page)
            len = CHUNK_PAGES * page;
        n = (len + page - 1) / page;
        *looked += n;
        if (mincore((void *)(uintptr_t)(base + offset), len, resident))
            continue; /* nothing is mapped there: nothing to warm */
        for (i = 0; i < n; i++)
            if (resident[i] & 1) {
                (void)base[offset + i * page]; /* volatile: a read */
                read++;
            }
    }
    return read;
}

static void *warm_main(void *arg)
{
    map_warm *w = arg;
    uint64_t started = monotonic_ms();
    size_t page = (size_t)sysconf(_SC_PAGESIZE), looked, read;

    pthread_setname_np(pthread_self(), "onced-warm"); /* top -H, perf */
    read = map_warm_read(w->base, w->bytes, &w->stop, &looked);
    diag_info("map", "%s: read %zu of the %zu pages in use (%zu MiB), "
             "the ones in the page cache, in %.1f s",
             looked < (w->bytes + page - 1) / page
                 ? "stopped warming the database map"
                 : "warmed the database map",
             read, looked, w->bytes >> 20,
             (double)(monotonic_ms() - started) / 1000.0);
    return NULL;
}

void map_warm_start(map_warm **out, const store *s)
{
    once_error err = {0};
    const uint8_t *base;
    map_warm *w;
    size_t bytes;

    *out = NULL;
    if (map_warm_locate(s, &base, &bytes, &err) < 0) {
        diag_warn("map", "the database map stays cold: %s", err.message);
        return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        diag_warn("map", "the database map stays cold: out of memory");
        return;
    }
    w->base = base;
    w->bytes = bytes;
    atomic_init(&w->stop, false);
    if (pthread_create(&w->thread, NULL, warm_main, w) != 0) {
        diag_warn("map", "the database map stays cold: cannot start a "
                  "thread");
        free(w);
        return;
    }
    *out = w;
}

void map_warm_stop(map_warm *w)
{
    if (w == NULL)
        return;
    atomic_store_explicit(&w->stop, true, memory_order_relaxed);
    pthread_join(w->thread, NULL);
    free(w);
}
