/*
 * temp_dir.h - a scratch directory for the storage tests.
 *
 * Each test gets a fresh directory from mkdtemp under $TMPDIR (or /tmp), so
 * tests run against a real LMDB environment on a real file system and never
 * see each other's data. The directory is removed, files first, afterwards.
 * temp_store_open opens the broker's store in one.
 */
#ifndef ONCE_TESTS_TEMP_DIR_H
#define ONCE_TESTS_TEMP_DIR_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static inline int temp_dir_make(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t)snprintf(out, cap, "%s/once-storage-XXXXXX", base) >= cap)
        return -1;
    return mkdtemp(out) != NULL ? 0 : -1;
}

/* Removes dir and the plain files in it (LMDB's data.mdb and lock.mdb). */
static inline void temp_dir_remove(const char *dir)
{
    char path[PATH_MAX + 256];
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* A fresh directory with the broker's LMDB environment open in it. */
static inline int temp_store_open(char *dir, size_t cap, store *s)
{
    once_error err;

    if (temp_dir_make(dir, cap) < 0)
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
