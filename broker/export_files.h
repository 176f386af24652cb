/*
 * export_files.h - the files and directories of a log export, written so
 * that nothing planted in the export directory can redirect them.
 *
 * Internal to export.c. See export_files.c.
 */
#ifndef ONCE_EXPORT_FILES_H
#define ONCE_EXPORT_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "tlog_tiles.h"

#define EXPORT_PATH_CAP (TLOG_PATH_MAX + 32)
/* The plain evidence: personal data, 0700 directories and 0600 files.
 * Everything else is public: 0755 and 0644. */
#define EXPORT_EVIDENCE_DIR "evidence"

typedef struct export_dir {
    const char *path;  /* DIR as given, for messages */
    int fd;
    /* The last directory below DIR opened, kept for the next file. */
    char cached[EXPORT_PATH_CAP];
    int cached_fd;
    once_error *err;
} export_dir;

/* Opens DIR, creating it 0755 when missing; an existing one must be the
 * caller's and writable by nobody else (file_dir_open). 0 or an error. */
int export_dir_open(export_dir *d, const char *path, once_error *err);
void export_dir_close(export_dir *d);

/* Paths below are relative to DIR, '/'-separated, without "." or "..".
 * Directories on the way are opened without following links and created
 * as needed. */

/* Replaces path with data through a temporary file and a rename, fsynced
 * first when `durable`. */
int export_dir_write(export_dir *d, const char *path, const uint8_t *data,
                     size_t len, int durable);

/* Writes a file that never changes once written: an existing one is kept
 * when identical (and given the mode a new one would get), and refused
 * with -ONCE_ERR_EXISTS when not. */
int export_dir_put_immutable(export_dir *d, const char *path,
                             const uint8_t *data, size_t len);

/* Opens an existing regular file for reading: a descriptor, or
 * -ONCE_ERR_NOT_FOUND, or another error (a link is -ONCE_ERR_EXISTS). */
int export_dir_open_file(export_dir *d, const char *path);

/* 1 when the regular file path exists, 0 when not, or an error. */
int export_dir_has_file(export_dir *d, const char *path);

/* 1 when DIR holds the directory `name` (one component), 0 when not. */
int export_dir_has_dir(export_dir *d, const char *name);

/* Removes the partial versions in "<base>.p/" other than width `keep`
 * (keep 0: all of them, and the directory). */
int export_dir_remove_partials(export_dir *d, const char *base,
                               unsigned keep);

#endif
