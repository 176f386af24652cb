/*
 * temp_dir.h - a scratch directory for the storage tests.
 *
 * Each test gets a fresh directory from mkdtemp under $TMPDIR (or /tmp), so
 * tests run against a real LMDB environment on a real file system and never
 * see each other's data. The directory is removed, files first, afterwards.
 */
#ifndef ONCE_TESTS_TEMP_DIR_H
#define ONCE_TESTS_TEMP_DIR_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A new directory named after `name`, its path in out. */
static inline int temp_dir_make(char *out, size_t cap, const char *name)
{
    const char *base = getenv("TMPDIR");

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t)snprintf(out, cap, "%s/once-%s-XXXXXX", base, name) >= cap)
        return -1;
    return mkdtemp(out) != NULL ? 0 : -1;
}

/* Removes dir and the files and empty directories in it (LMDB's data.mdb
 * and lock.mdb, a test's key files). */
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
        remove(path);
    }
    closedir(d);
    rmdir(dir);
}

#endif
