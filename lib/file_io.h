/*
 * file_io.h - whole-file writes for the library and its tools.
 *
 * Internal to libonce and its tools. See file_io.c.
 */
#ifndef ONCE_FILE_IO_H
#define ONCE_FILE_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes to fd, retrying short writes and EINTR. 0, or -1
 * with errno set. */
int file_write_all(int fd, const void *data, size_t len);

/* Replaces name (relative to dirfd) with data, mode `mode` whatever the
 * umask: writes name + ".tmp", fsyncs it when `durable`, and renames it
 * into place, so that a reader or a crash sees the old file or the new
 * one, never a part. 0, or -errno; the temporary file is removed on
 * failure. */
int file_write_atomic(int dirfd, const char *name, const void *data,
                      size_t len, mode_t mode, int durable);

#endif
