/*
 * test_map_warm.c - the start-up pass over the database map
 * (broker/map_warm.c) on a real LMDB environment.
 *
 * The pass finds LMDB's map in /proc/self/maps, since LMDB does not hand
 * out its address; the test checks that what it found is that map and
 * not another mapping of the process: page 0 of data.mdb is LMDB's meta
 * page, whose magic number follows the 16-byte page header, and a record
 * stored in the environment lies inside the bytes the pass reads. Then
 * the pass runs to its end and, in another store, is stopped at once
 * (both under AddressSanitizer in CI: no read outside the map, no leak).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "map_warm.h"
#include "registry.h"
#include "temp_store.h"

#define LMDB_META_MAGIC 0xBEEFC0DEu
#define PAGE_HEADER_BYTES 16

static const char STORED[] = "a stored record's bytes";

/* Stores one record and returns where LMDB reads it from. */
static const uint8_t *store_one(store *s, MDB_txn **reader)
{
    MDB_txn *txn = temp_store_begin(s, 0);
    MDB_val value;
    once_error err;

    assert_int_equal(registry_put_record(txn, s, "licence", "subject-1", 1,
                                         (const uint8_t *)STORED,
                                         sizeof(STORED), NULL, &err), 0);
    temp_store_commit(txn);
    *reader = temp_store_begin(s, 1);
    assert_int_equal(registry_get_record(*reader, s, "licence", "subject-1",
                                         0, &value, NULL, &err), 0);
    assert_memory_equal(value.mv_data, STORED, sizeof(STORED));
    return value.mv_data;
}

static void test_locate_finds_lmdb_map(void **state)
{
    temp_store *f = *state;
    const uint8_t *base, *record;
    MDB_txn *reader;
    size_t bytes;
    uint32_t magic;
    once_error err;

    record = store_one(&f->s, &reader);
    assert_int_equal(map_warm_locate(&f->s, &base, &bytes, &err), 0);
    assert_non_null(base);
    assert_true(bytes > 0 && bytes % (size_t)sysconf(_SC_PAGESIZE) == 0);
    memcpy(&magic, base + PAGE_HEADER_BYTES, sizeof(magic));
    assert_int_equal(magic, LMDB_META_MAGIC);
    assert_true(record >= base && record + sizeof(STORED) <= base + bytes);
    mdb_txn_abort(reader);
}

static void test_pass_runs_and_stops(void **state)
{
    temp_store *f = *state;
    map_warm *w;
    MDB_txn *reader;

    store_one(&f->s, &reader);
    mdb_txn_abort(reader);
    /* To its end: a few pages take well under the 200 ms. */
    map_warm_start(&w, &f->s);
    assert_non_null(w);
    usleep(200 * 1000);
    map_warm_stop(w);
    /* Stopped before or during its pass. */
    map_warm_start(&w, &f->s);
    assert_non_null(w);
    map_warm_stop(w);
    map_warm_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_STORE_TEST(test_locate_finds_lmdb_map),
        TEMP_STORE_TEST(test_pass_runs_and_stops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
