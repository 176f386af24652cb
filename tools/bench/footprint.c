/*
 * footprint.c - what a broker run leaves in memory and on disk: onced's
 * resident memory, and the bytes of each LMDB table before and after the
 * run.
 *
 * The scale of the registry (docs/PERFORMANCE.md) is judged by these as
 * much as by the request rate: bytes per record (records + latest, and the
 * log of the publishes that stored them), bytes per exchange (what the
 * request phase added to every table, over the leaves it appended), and
 * whether onced's memory grows with the registry. Resident memory is
 * split as the kernel counts it: RssAnon is onced's own heap and stacks;
 * RssFile is the map's pages onced touched, which the page cache holds and
 * the kernel may drop at any time, so they cost cache, not memory onced
 * owns.
 *
 * A table's bytes are its pages (branch, leaf, overflow) times the page
 * size, from mdb_stat in one read transaction; data.mdb also holds the
 * free pages and the two meta pages, so the sum is a little below the
 * file. All figures go to stderr as notes, beside the report.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "bench.h"
#include "footprint.h"
#include "store.h"

static const char *const table_names[FOOTPRINT_TABLES] = {
    "records", "latest", "log_leaves", "log_evidence", "log_nodes",
    "log_checkpoints", "replies", "departments", "grants",
};

void footprint_rss(pid_t pid)
{
    char path[64], line[256], out[512] = "";
    size_t used = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL) {
        note("cannot read %s", path);
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) != 0 &&
            strncmp(line, "VmHWM:", 6) != 0 &&
            strncmp(line, "RssAnon:", 8) != 0 &&
            strncmp(line, "RssFile:", 8) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        /* "VmRSS:\t  123 kB" -> "VmRSS 123 kB" */
        {
            char name[16];
            unsigned long kb;

            if (sscanf(line, "%15[^:]: %lu", name, &kb) == 2)
                used += (size_t)snprintf(out + used, sizeof(out) - used,
                                         "%s%s %lu MiB", used ? ", " : "",
                                         name, kb >> 10);
        }
        if (used >= sizeof(out))
            break;
    }
    fclose(f);
    note("onced memory: %s", out);
}

int footprint_db(const bench_home *h, footprint *fp)
{
    char db[PATH_MAX + 16], file[PATH_MAX + 32];
    once_error err = {0};
    struct stat st;
    MDB_txn *txn;
    store s;
    int rc;

    memset(fp, 0, sizeof(*fp));
    if (path_join(db, sizeof(db), h->home, "db") < 0 ||
        path_join(file, sizeof(file), db, "data.mdb") < 0)
        return -1;
    if (stat(file, &st) == 0)
        fp->file_bytes = (uint64_t)st.st_size;
    if (store_open(&s, db, 0, &err) < 0) {
        note("cannot open %s: %s", db, err.message);
        return -1;
    }
    rc = mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn);
    for (size_t i = 0; i < FOOTPRINT_TABLES && rc == 0; i++) {
        MDB_dbi dbi;
        MDB_stat ms;

        /* A table no run has made yet counts as empty. */
        if (mdb_dbi_open(txn, table_names[i], 0, &dbi) != 0 ||
            mdb_stat(txn, dbi, &ms) != 0)
            continue;
        fp->entries[i] = ms.ms_entries;
        fp->bytes[i] = (uint64_t)(ms.ms_branch_pages + ms.ms_leaf_pages +
                                  ms.ms_overflow_pages) * ms.ms_psize;
        fp->depth[i] = ms.ms_depth;
    }
    if (rc == 0)
        mdb_txn_abort(txn);
    store_close(&s);
    return rc == 0 ? 0 : -1;
}

void footprint_print(const footprint *before, const footprint *after)
{
    uint64_t records = before->entries[0], sum = 0, delta_sum = 0;
    uint64_t leaves = after->entries[2] - before->entries[2];

    note("before the run: data.mdb %.2f GiB, %llu records; per record: "
         "the table's bytes then over its records",
         (double)before->file_bytes / 1073741824.0,
         (unsigned long long)records);
    note("%-16s %12s %6s %14s %11s %13s", "table", "entries", "depth",
         "bytes before", "per record", "per exchange");
    for (size_t i = 0; i < FOOTPRINT_TABLES; i++) {
        uint64_t delta = after->bytes[i] - before->bytes[i];

        sum += before->bytes[i];
        delta_sum += delta;
        note("%-16s %12llu %6u %14llu %11.1f %13.1f", table_names[i],
             (unsigned long long)before->entries[i], before->depth[i],
             (unsigned long long)before->bytes[i],
             records ? (double)before->bytes[i] / (double)records : 0.0,
             leaves ? (double)delta / (double)leaves : 0.0);
    }
    note("%-16s %12s %6s %14llu %11.1f %13.1f", "all tables", "", "",
         (unsigned long long)sum,
         records ? (double)sum / (double)records : 0.0,
         leaves ? (double)delta_sum / (double)leaves : 0.0);
    note("per exchange: what the run added to the table over the %llu "
         "leaves it appended (its exchanges); data.mdb grew by %lld bytes "
         "to %.2f GiB", (unsigned long long)leaves,
         (long long)(after->file_bytes - before->file_bytes),
         (double)after->file_bytes / 1073741824.0);
}
