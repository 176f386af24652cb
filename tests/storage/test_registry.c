/*
 * test_registry.c - the records database on a real LMDB environment.
 *
 * Versions only grow, every version stays readable, a record's history
 * comes back in version order (also past 255, where a little-endian key
 * would sort wrongly), the stored counts per type stay exact and are
 * rebuilt where they do not add up, and a full map refuses writes with
 * STORAGE_FULL while reads go on.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"
#include "temp_store.h"

#define LICENCE "business-licence"
#define SUBJECT "91350100M000100Y43"

typedef temp_store fixture;

/* Puts one version in its own committed transaction. */
static int put(store *s, const char *type, const char *subject,
               uint64_t version, const char *value, once_error *err)
{
    MDB_txn *txn;
    int rc;

    rc = store_begin(s, 0, &txn, err);
    if (rc < 0)
        return rc;
    rc = registry_put_record(txn, s, type, subject, version,
                             (const uint8_t *)value, strlen(value), NULL,
                             err);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_commit(txn, err);
}

static void assert_value(const MDB_val *v, const char *expected)
{
    assert_int_equal(v->mv_size, strlen(expected));
    assert_memory_equal(v->mv_data, expected, v->mv_size);
}

static void test_versions(void **state)
{
    fixture *f = *state;
    once_error err;
    MDB_txn *txn;
    MDB_val v;
    uint64_t version = 0;

    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 1, "first", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 2, "second", &err), 0);

    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(registry_latest_version(txn, &f->s, LICENCE, SUBJECT,
                                             &version, &err), 0);
    assert_int_equal(version, 2);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, SUBJECT, 0, &v,
                                         &version, &err), 0);
    assert_int_equal(version, 2);
    assert_value(&v, "second");
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, SUBJECT, 1, &v,
                                         &version, &err), 0);
    assert_int_equal(version, 1);
    assert_value(&v, "first");
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, SUBJECT, 3, &v,
                                         &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(err.code, ONCE_ERR_NOT_FOUND);
    mdb_txn_abort(txn);
}

/* The newest version is found by one seek in `records` past the record's
 * versions and one step back (registry.c, read_newest): whether the seek
 * lands on the next record, past the end of the table, or on version
 * 2^64-1 itself; and a neighbour's versions are never taken for a missing
 * record's, whichever side it is on. */
static void test_newest(void **state)
{
    fixture *f = *state;
    const char *a = "91350100M000100Y43", *b = "91350100M000100Y44",
               *c = "91350100M000100Y45", *d = "91350100M000100Y46";
    uint64_t version = 0;
    once_error err;
    MDB_txn *txn;
    MDB_val v;

    assert_int_equal(put(&f->s, LICENCE, b, 1, "b1", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, b, 7, "b7", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, d, 3, "d3", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, d, UINT64_MAX, "dmax", &err), 0);

    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    /* Followed by d: one step back from d's first version. */
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, b, 0, &v,
                                         &version, &err), 0);
    assert_int_equal(version, 7);
    assert_value(&v, "b7");
    /* The seek lands on version 2^64-1 itself, the table's last key. */
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, d, 0, &v,
                                         &version, &err), 0);
    assert_true(version == UINT64_MAX);
    assert_value(&v, "dmax");
    /* Missing, before b / between b and d / after d (past the end). */
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, a, 0, &v,
                                         &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, c, 0, &v,
                                         &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE,
                                         "91350100M000100Y47", 0, &v,
                                         &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(registry_get_record(txn, &f->s, "id-card", b, 0, &v,
                                         &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    mdb_txn_abort(txn);
}

static void test_stale_versions(void **state)
{
    fixture *f = *state;
    bool created;
    once_error err;
    MDB_txn *txn;
    MDB_val v;

    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 1, "first", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 2, "second", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 2, "again", &err),
                     -ONCE_ERR_STALE_VERSION);
    assert_int_equal(err.code, ONCE_ERR_STALE_VERSION);
    assert_non_null(strstr(err.message, "not above the latest, 2"));
    /* The subject is a credit code: never in a message the broker logs. */
    assert_null(strstr(err.message, SUBJECT));
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 1, "replayed", &err),
                     -ONCE_ERR_STALE_VERSION);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 0, "zero", &err),
                     -ONCE_ERR_INVALID_RECORD);

    /* Within one transaction, as the writer's group commit does it; a
     * new version of a stored record creates no record. */
    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    created = true;
    assert_int_equal(registry_put_record(txn, &f->s, LICENCE, SUBJECT, 5,
                                         (const uint8_t *)"5", 1, &created,
                                         &err), 0);
    assert_false(created);
    assert_int_equal(registry_put_record(txn, &f->s, LICENCE, SUBJECT, 5,
                                         (const uint8_t *)"5", 1, NULL,
                                         &err),
                     -ONCE_ERR_STALE_VERSION);
    assert_int_equal(registry_put_record(txn, &f->s, LICENCE, SUBJECT, 4,
                                         (const uint8_t *)"4", 1, NULL,
                                         &err),
                     -ONCE_ERR_STALE_VERSION);
    /* The first version of another subject creates its record. */
    assert_int_equal(registry_put_record(txn, &f->s, LICENCE,
                                         "91350100M000100Y51", 3,
                                         (const uint8_t *)"3", 1, &created,
                                         &err), 0);
    assert_true(created);
    assert_int_equal(store_commit(txn, &err), 0);

    /* The refused writes left version 2 as it was. */
    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, SUBJECT, 2, &v,
                                         NULL, &err), 0);
    assert_value(&v, "second");
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, SUBJECT, 0, &v,
                                         NULL, &err), 0);
    assert_value(&v, "5");
    mdb_txn_abort(txn);
}

typedef struct history {
    uint64_t versions[16];
    size_t count;
    int stop_after; /* 0 = never */
} history;

static int collect(uint64_t version, const MDB_val *value, void *arg)
{
    history *h = arg;
    char expected[32];

    snprintf(expected, sizeof(expected), "v%llu", (unsigned long long)version);
    assert_value(value, expected);
    h->versions[h->count++] = version;
    if (h->stop_after != 0 && (int)h->count == h->stop_after)
        return 42;
    return 0;
}

static void test_history_order(void **state)
{
    static const uint64_t versions[] = { 1, 2, 3, 10, 255, 256, 65536 };
    fixture *f = *state;
    char value[32];
    history h;
    once_error err;
    MDB_txn *txn;
    size_t i;

    for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        snprintf(value, sizeof(value), "v%llu",
                 (unsigned long long)versions[i]);
        assert_int_equal(put(&f->s, LICENCE, SUBJECT, versions[i], value,
                             &err), 0);
    }
    /* Neighbours whose keys would run together without length bytes. */
    assert_int_equal(put(&f->s, "ab", "c", 7, "v7", &err), 0);
    assert_int_equal(put(&f->s, "a", "bc", 8, "v8", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT "0", 9, "v9", &err), 0);

    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    memset(&h, 0, sizeof(h));
    assert_int_equal(registry_history(txn, &f->s, LICENCE, SUBJECT, collect,
                                      &h, &err), 0);
    assert_int_equal(h.count, sizeof(versions) / sizeof(versions[0]));
    for (i = 0; i < h.count; i++)
        assert_int_equal(h.versions[i], versions[i]);

    memset(&h, 0, sizeof(h));
    assert_int_equal(registry_history(txn, &f->s, "ab", "c", collect, &h,
                                      &err), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.versions[0], 7);
    memset(&h, 0, sizeof(h));
    assert_int_equal(registry_history(txn, &f->s, "a", "bc", collect, &h,
                                      &err), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.versions[0], 8);

    /* A non-zero return from the callback stops the walk and comes back. */
    memset(&h, 0, sizeof(h));
    h.stop_after = 2;
    assert_int_equal(registry_history(txn, &f->s, LICENCE, SUBJECT, collect,
                                      &h, &err), 42);
    assert_int_equal(h.count, 2);

    /* No record: no calls, no error. */
    memset(&h, 0, sizeof(h));
    assert_int_equal(registry_history(txn, &f->s, LICENCE, "nobody", collect,
                                      &h, &err), 0);
    assert_int_equal(h.count, 0);
    mdb_txn_abort(txn);
}

static void test_not_found_and_bad_keys(void **state)
{
    fixture *f = *state;
    char long_subject[ONCE_MAX_SUBJECT + 2];
    once_error err;
    uint64_t version;
    MDB_txn *txn;
    MDB_val v;

    memset(long_subject, '1', sizeof(long_subject) - 1);
    long_subject[sizeof(long_subject) - 1] = '\0';
    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(registry_latest_version(txn, &f->s, LICENCE, SUBJECT,
                                             &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, SUBJECT, 0, &v,
                                         &version, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(err.code, ONCE_ERR_NOT_FOUND);
    assert_null(strstr(err.message, SUBJECT));
    assert_int_equal(registry_get_record(txn, &f->s, "Bad Type", SUBJECT, 0,
                                         &v, &version, &err),
                     -ONCE_ERR_UNKNOWN_TYPE);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, "", 0, &v,
                                         &version, &err),
                     -ONCE_ERR_INVALID_SUBJECT);
    assert_int_equal(registry_get_record(txn, &f->s, LICENCE, long_subject, 0,
                                         &v, &version, &err),
                     -ONCE_ERR_INVALID_SUBJECT);
    mdb_txn_abort(txn);
}

typedef struct type_counts {
    char name[4][ONCE_MAX_NAME + 1];
    uint64_t records[4];
    size_t n;
} type_counts;

static int count_type(const char *type, uint64_t records, void *arg)
{
    type_counts *t = arg;

    if (t->n == 4)
        return -1;
    snprintf(t->name[t->n], sizeof(t->name[0]), "%s", type);
    t->records[t->n++] = records;
    return 0;
}

/* types := registry_count_types's calls, which must succeed. */
static void read_type_counts(MDB_txn *txn, const store *s, type_counts *types)
{
    once_error err;

    types->n = 0;
    assert_int_equal(registry_count_types(txn, s, count_type, types, &err), 0);
}

/* The two types the count tests store, in key order (the type's length
 * first), with their numbers of records. */
static void expect_id_cards_and_licences(const type_counts *types,
                                         uint64_t id_cards, uint64_t licences)
{
    assert_int_equal(types->n, 2);
    assert_string_equal(types->name[0], "id-card");
    assert_int_equal(types->records[0], id_cards);
    assert_string_equal(types->name[1], LICENCE);
    assert_int_equal(types->records[1], licences);
}

static void test_count(void **state)
{
    fixture *f = *state;
    type_counts types;
    size_t records = 99, versions = 99;
    once_error err;
    MDB_txn *txn;

    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(registry_count(txn, &f->s, &records, &versions, &err), 0);
    assert_int_equal(records, 0);
    assert_int_equal(versions, 0);
    read_type_counts(txn, &f->s, &types);
    assert_int_equal(types.n, 0);
    mdb_txn_abort(txn);

    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 1, "a", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 2, "b", &err), 0);
    assert_int_equal(put(&f->s, LICENCE, SUBJECT, 3, "c", &err), 0);
    assert_int_equal(put(&f->s, "id-card", "110101199003074477", 1, "d",
                         &err), 0);

    assert_int_equal(put(&f->s, "id-card", "110101199003074485", 1, "e",
                         &err), 0);

    assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
    assert_int_equal(registry_count(txn, &f->s, &records, &versions, &err), 0);
    assert_int_equal(records, 3);
    assert_int_equal(versions, 5);
    /* Per type, in key order (the type's length first). */
    read_type_counts(txn, &f->s, &types);
    expect_id_cards_and_licences(&types, 2, 1);
    mdb_txn_abort(txn);
}

/* A home of an older version has records but no stored counts (here: the
 * table emptied), or counts that missed records an older program stored
 * (here: one count lowered), or counts that do not decode. Then the counts
 * do not add up to the records: registry_count_types walks `latest` instead, and
 * registry_recount_types rewrites the counts once, after which they are
 * read and kept up again. */
static void test_recount(void **state)
{
    fixture *f = *state;
    uint8_t key[1 + sizeof(LICENCE)], one_be[8];
    MDB_val k = { sizeof(key) - 1, key }, v = { sizeof(one_be), one_be };
    type_counts types;
    bool recounted = true;
    once_error err;
    MDB_txn *txn;
    char subject[19];
    unsigned i;

    for (i = 0; i < 3; i++) {
        snprintf(subject, sizeof(subject), "9135010%011u", i);
        assert_int_equal(put(&f->s, LICENCE, subject, 1, "a", &err), 0);
    }
    assert_int_equal(put(&f->s, "id-card", "110101199003074477", 1, "d",
                         &err), 0);
    /* Counts that add up: nothing to do. */
    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    assert_int_equal(registry_recount_types(txn, &f->s, &recounted, &err), 0);
    assert_false(recounted);
    /* Lowered: the licences' count says 1 of 3. */
    key[0] = (uint8_t)strlen(LICENCE);
    memcpy(key + 1, LICENCE, strlen(LICENCE));
    store_put_u64be(one_be, 1);
    assert_int_equal(mdb_put(txn, f->s.record_counts, &k, &v, 0), 0);
    read_type_counts(txn, &f->s, &types);
    assert_int_equal(types.n, 2);
    assert_int_equal(types.records[1], 3);
    assert_int_equal(registry_recount_types(txn, &f->s, &recounted, &err), 0);
    assert_true(recounted);
    /* Undecodable: a value of 3 bytes. */
    v.mv_size = 3;
    assert_int_equal(mdb_put(txn, f->s.record_counts, &k, &v, 0), 0);
    read_type_counts(txn, &f->s, &types);
    assert_int_equal(types.records[1], 3);
    assert_int_equal(registry_recount_types(txn, &f->s, &recounted, &err), 0);
    assert_true(recounted);
    v.mv_size = sizeof(one_be);
    /* Missing altogether. */
    assert_int_equal(mdb_drop(txn, f->s.record_counts, 0), 0);
    read_type_counts(txn, &f->s, &types);
    assert_int_equal(types.n, 2);
    assert_int_equal(registry_recount_types(txn, &f->s, &recounted, &err), 0);
    assert_true(recounted);
    assert_int_equal(store_commit(txn, &err), 0);

    /* Stored again, and kept up by the next new record. */
    assert_int_equal(put(&f->s, "id-card", "110101199003074485", 1, "e",
                         &err), 0);
    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    assert_int_equal(registry_recount_types(txn, &f->s, &recounted, &err), 0);
    assert_false(recounted);
    assert_int_equal(mdb_get(txn, f->s.record_counts, &k, &v), 0);
    assert_int_equal(v.mv_size, 8);
    assert_int_equal(store_get_u64be(v.mv_data), 3);
    read_type_counts(txn, &f->s, &types);
    expect_id_cards_and_licences(&types, 2, 3);
    mdb_txn_abort(txn);
}

/* A map of 256 KiB fills after a few dozen 4 KiB values. The write that
 * does not fit is refused with STORAGE_FULL (from the put or the commit),
 * every committed version still reads back, and the same database opened
 * with a larger map takes writes again. */
static void test_storage_full(void **state)
{
    char dir[PATH_MAX], value[4096 + 1];
    uint64_t version, committed = 0;
    size_t records, versions;
    once_error err;
    MDB_txn *txn;
    MDB_val v;
    store s;
    int rc = 0;

    (void)state;
    assert_int_equal(temp_dir_make(dir, sizeof(dir), "storage"), 0);
    assert_int_equal(store_open(&s, dir, 256 * 1024, &err), 0);
    for (version = 1; version <= 1000; version++) {
        memset(value, 'a' + (int)(version % 26), sizeof(value) - 1);
        value[sizeof(value) - 1] = '\0';
        rc = put(&s, LICENCE, SUBJECT, version, value, &err);
        if (rc < 0)
            break;
        committed = version;
    }
    assert_int_equal(rc, -ONCE_ERR_STORAGE_FULL);
    assert_int_equal(err.code, ONCE_ERR_STORAGE_FULL);
    assert_non_null(strstr(err.message, "map_size_mb"));
    assert_true(committed > 1);

    assert_int_equal(store_begin(&s, 1, &txn, &err), 0);
    assert_int_equal(registry_latest_version(txn, &s, LICENCE, SUBJECT,
                                             &version, &err), 0);
    assert_int_equal(version, committed);
    assert_int_equal(registry_get_record(txn, &s, LICENCE, SUBJECT, 1, &v,
                                         NULL, &err), 0);
    assert_int_equal(v.mv_size, 4096);
    assert_int_equal(((const char *)v.mv_data)[0], 'b');
    assert_int_equal(registry_count(txn, &s, &records, &versions, &err), 0);
    assert_int_equal(records, 1);
    assert_int_equal(versions, committed);
    mdb_txn_abort(txn);
    store_close(&s);

    assert_int_equal(store_open(&s, dir, 4 * 1024 * 1024, &err), 0);
    assert_int_equal(put(&s, LICENCE, SUBJECT, committed + 1, value, &err), 0);
    store_close(&s);
    temp_dir_remove(dir);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX + 16];
    once_error err;
    store s;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/plain-file", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(store_open(&s, path, 0, &err), -ONCE_ERR_IO);
    assert_non_null(strstr(err.message, "not a directory"));
    assert_null(s.env);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEMP_STORE_TEST(test_versions),
        TEMP_STORE_TEST(test_newest),
        TEMP_STORE_TEST(test_stale_versions),
        TEMP_STORE_TEST(test_history_order),
        TEMP_STORE_TEST(test_not_found_and_bad_keys),
        TEMP_STORE_TEST(test_count),
        TEMP_STORE_TEST(test_recount),
        cmocka_unit_test(test_storage_full),
        TEMP_STORE_TEST(test_open_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
