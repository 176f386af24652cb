/*
 * temp_store.h - the broker's LMDB environment in a scratch directory, for
 * the storage tests: a fresh store for each test, removed afterwards.
 */
#ifndef ONCE_TESTS_TEMP_STORE_H
#define ONCE_TESTS_TEMP_STORE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"
#include "temp_dir.h"

/* A fresh directory with the broker's LMDB environment open in it. */
static inline int temp_store_open(char *dir, size_t cap, store *s)
{
    once_error err;

    if (temp_dir_make(dir, cap, "storage") < 0)
        return -1;
    if (store_open(s, dir, 0, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.message);
        temp_dir_remove(dir);
        return -1;
    }
    return 0;
}

static inline void temp_store_close(const char *dir, store *s)
{
    store_close(s);
    temp_dir_remove(dir);
}

/* A transaction on s, the test failing when it cannot begin, and its
 * commit, the test failing when it cannot. */
static inline MDB_txn *temp_store_begin(store *s, int read_only)
{
    once_error err;
    MDB_txn *txn = NULL;

    assert_int_equal(store_begin(s, read_only, &txn, &err), 0);
    return txn;
}

static inline void temp_store_commit(MDB_txn *txn)
{
    once_error err;

    assert_int_equal(store_commit(txn, &err), 0);
}

/* A cmocka fixture of one store, fresh for each test. */
typedef struct temp_store {
    char dir[PATH_MAX];
    store s;
} temp_store;

static inline int temp_store_setup(void **state)
{
    static temp_store f;

    memset(&f, 0, sizeof(f));
    if (temp_store_open(f.dir, sizeof(f.dir), &f.s) < 0)
        return -1;
    *state = &f;
    return 0;
}

static inline int temp_store_teardown(void **state)
{
    temp_store *f = *state;

    temp_store_close(f->dir, &f->s);
    return 0;
}

#define TEMP_STORE_TEST(test) \
    cmocka_unit_test_setup_teardown(test, temp_store_setup, \
                                    temp_store_teardown)

#endif
