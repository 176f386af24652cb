/*
 * file_io.h - file and directory creation that no planted link can
 * redirect, for the library and its tools.
 *
 * Internal to libonce and its tools. See file_io.c.
 */
#ifndef ONCE_FILE_IO_H
#define ONCE_FILE_IO_H

#include <stddef.h>
#include <sys/types.h>

#include "once/once.h"

/* Writes all len bytes to fd, retrying short writes and EINTR. 0, or -1
 * with errno set. */
int file_write_all(int fd, const void *data, size_t len);

/* Creates path as a new file (O_CREAT | O_EXCL | O_NOFOLLOW: never
 * through anything already there, a symbolic link included), mode `mode`
 * whatever the umask, writes data and fsyncs it. 0, or -errno (-EEXIST
 * when the name is taken); the file is removed on failure. */
int file_create_new(const char *path, const void *data, size_t len,
                    mode_t mode);

/* Opens directory `path` below atfd (AT_FDCWD: relative to the working
 * directory) without following a symbolic link in its last component
 * (trailing slashes are dropped, which would follow one),
 * creating it when it is missing and `create` is set. Refused: a symbolic
 * link, anything not a directory, a directory owned by another user, and
 * one that group or others may write (they could plant links in it).
 * With fix_mode set, the directory gets exactly `mode` (it is the
 * caller's); otherwise only a directory it creates does. `shown` (or NULL)
 * names the directory atfd is in messages. A descriptor, or a negative error:
 * -ONCE_ERR_NOT_FOUND (missing, create unset), -ONCE_ERR_EXISTS (a link
 * or another kind of file), -ONCE_ERR_INVALID_ARGUMENT (another owner, or
 * writable by others), -ONCE_ERR_IO. */
int file_dir_open(int atfd, const char *path, int create, mode_t mode,
                  int fix_mode, const char *shown, once_error *err);

/* Opens the existing regular file `name` below dirfd for reading, never
 * through a symbolic link, and never blocking on a FIFO. A descriptor,
 * -ONCE_ERR_NOT_FOUND, -ONCE_ERR_EXISTS (a link or not a regular file) or
 * -ONCE_ERR_IO. */
int file_open_regular(int dirfd, const char *name, const char *shown,
                      once_error *err);

/* Replaces `name`, one path component, in dirfd with data, mode `mode`
 * whatever the umask: writes name + ".tmp" (created with O_EXCL |
 * O_NOFOLLOW; a regular file left there by a crash is removed first),
 * fsyncs it when `durable`, and renames it into place, so a reader or a
 * crash sees the old file or the new one, never a part. A symbolic link
 * or anything but a regular file at either name is refused with
 * -ONCE_ERR_EXISTS, never followed or replaced. 0 or a negative error; the
 * temporary file is removed on failure. */
int file_write_atomic(int dirfd, const char *name, const void *data,
                      size_t len, mode_t mode, int durable, const char *shown,
                      once_error *err);

#endif
