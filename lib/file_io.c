/*
 * file_io.c - file and directory creation for key files, log exports and
 * the auditor's saved state, safe in a directory someone else prepared.
 *
 * Why so careful. An export or a key is written by an operator, often as
 * root, into a path an attacker may have touched first: a planted
 * `README.txt.tmp -> /etc/shadow` once made a log export overwrite its
 * target, and a planted `tile -> /elsewhere` sent the tiles there. So:
 *
 *  - every file is created new, O_CREAT | O_EXCL | O_NOFOLLOW, which fails
 *    on anything already at the name, a dangling link included;
 *  - directories are opened one component at a time with O_NOFOLLOW (the
 *    caller walks below a directory descriptor, never a path), and one
 *    owned by another user or writable by group or others is refused:
 *    whoever can write in it can plant links between our checks and our
 *    writes;
 *  - what is already at a name we replace must be a regular file: a link
 *    there is refused and reported, not silently replaced, since it is a
 *    sign someone tampered with the directory.
 *
 * write(2) may write less than asked (a signal, a full pipe, some file
 * systems) and every caller here wants all or nothing, so the loop lives
 * in one place. Files that others read while they may be rewritten (an
 * export being extended, an auditor's state) go through a temporary name
 * and a rename, which POSIX makes atomic within a directory. The temporary
 * name is fixed (name + ".tmp"), so a crash leaves at most one per file,
 * which the next write removes if it is a regular file.
 */
#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_SUFFIX ".tmp"
/* "shown/" in messages, or nothing when shown is NULL: two arguments. */
#define AT(shown) ((shown) ? (shown) : ""), ((shown) ? "/" : "")

int file_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int file_create_new(const char *path, const void *data, size_t len,
                    mode_t mode)
{
    int fd, saved;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              mode);
    if (fd < 0)
        return -errno;
    if (file_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        saved = errno;
        close(fd);
        unlink(path);
        return -saved;
    }
    if (close(fd) < 0) {
        saved = errno;
        unlink(path);
        return -saved;
    }
    return 0;
}

/* Why the entry `name` in dirfd is not what we may use, as a refusal:
 * -ONCE_ERR_EXISTS naming a link or another kind of file. */
static int refuse_kind(int dirfd, const char *name, const char *shown,
                       const char *want, once_error *err)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        return once_error_set(err, ONCE_ERR_EXISTS,
                              "%s%s%s is a symbolic link: refusing to follow "
                              "or replace it (was it planted?)", AT(shown),
                              name);
    return once_error_set(err, ONCE_ERR_EXISTS,
                          "%s%s%s exists and is not a %s: refusing to touch "
                          "it", AT(shown), name, want);
}

int file_dir_open(int atfd, const char *path, int create, mode_t mode,
                  int fix_mode, const char *shown, once_error *err)
{
    char name[PATH_MAX];
    size_t len = strlen(path);
    struct stat st;
    int fd, created = 0;

    /* "dir/" would resolve a link named dir despite O_NOFOLLOW. */
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len >= sizeof(name))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "path too long: %.64s...", path);
    memcpy(name, path, len);
    name[len] = '\0';

    if (create) {
        if (mkdirat(atfd, name, mode) == 0)
            created = 1;
        else if (errno != EEXIST)
            return once_error_set(err, ONCE_ERR_IO,
                                  "cannot create directory %s%s%s: %s",
                                  AT(shown), name, strerror(errno));
    }
    fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return once_error_set(err, ONCE_ERR_NOT_FOUND,
                                  "%s%s%s does not exist", AT(shown), name);
        if (errno == ELOOP || errno == ENOTDIR)
            return refuse_kind(atfd, name, shown, "directory", err);
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s%s%s: %s",
                              AT(shown), name, strerror(errno));
    }
    if (fstat(fd, &st) < 0) {
        once_error_set(err, ONCE_ERR_IO, "cannot stat %s%s%s: %s", AT(shown),
                       name, strerror(errno));
        close(fd);
        return -ONCE_ERR_IO;
    }
    if (st.st_uid != geteuid()) {
        once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                       "%s%s%s belongs to uid %u, not to this user (uid %u): "
                       "refusing to write in a directory another user "
                       "controls", AT(shown), name, (unsigned)st.st_uid,
                       (unsigned)geteuid());
        close(fd);
        return -ONCE_ERR_INVALID_ARGUMENT;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                       "%s%s%s has mode %04o: group or others may write in "
                       "it and plant links; refusing to write in it (chmod "
                       "go-w it if that is safe)", AT(shown), name,
                       (unsigned)(st.st_mode & 07777));
        close(fd);
        return -ONCE_ERR_INVALID_ARGUMENT;
    }
    /* Exactly `mode` whatever the umask. */
    if ((created || fix_mode) && (st.st_mode & 07777) != mode &&
        fchmod(fd, mode) < 0) {
        once_error_set(err, ONCE_ERR_IO, "cannot set the mode of %s%s%s: %s",
                       AT(shown), name, strerror(errno));
        close(fd);
        return -ONCE_ERR_IO;
    }
    return fd;
}

int file_open_regular(int dirfd, const char *name, const char *shown,
                      once_error *err)
{
    struct stat st;
    int fd;

    /* O_NONBLOCK: a planted FIFO must not hang the caller; it is refused
     * as not a regular file below. */
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return once_error_set(err, ONCE_ERR_NOT_FOUND,
                                  "%s%s%s does not exist", AT(shown), name);
        if (errno == ELOOP)
            return refuse_kind(dirfd, name, shown, "regular file", err);
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s%s%s: %s",
                              AT(shown), name, strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse_kind(dirfd, name, shown, "regular file", err);
    }
    return fd;
}

/* 0 when `name` is free or a regular file (which may be replaced). */
static int check_replaceable(int dirfd, const char *name, const char *shown,
                             once_error *err)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return once_error_set(err, ONCE_ERR_IO, "cannot stat %s%s%s: %s",
                              AT(shown), name, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return refuse_kind(dirfd, name, shown, "regular file", err);
    return 0;
}

/* Creates the temporary file, removing a regular one a crash left. */
static int create_temp(int dirfd, const char *tmp, mode_t mode,
                       const char *shown, once_error *err)
{
    int fd, attempt, rc;

    for (attempt = 0;; attempt++) {
        fd = openat(dirfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    mode);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST || attempt > 0)
            return once_error_set(err, ONCE_ERR_IO, "cannot create %s%s%s: %s",
                                  AT(shown), tmp, strerror(errno));
        rc = check_replaceable(dirfd, tmp, shown, err);
        if (rc < 0)
            return rc;
        if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
            return once_error_set(err, ONCE_ERR_IO, "cannot remove %s%s%s: "
                                  "%s", AT(shown), tmp, strerror(errno));
    }
}

int file_write_atomic(int dirfd, const char *name, const void *data,
                      size_t len, mode_t mode, int durable, const char *shown,
                      once_error *err)
{
    char tmp[4096];
    int fd, rc;

    if (strchr(name, '/') != NULL || name[0] == '\0')
        return once_error_set(err, ONCE_ERR_INTERNAL, "file_write_atomic "
                              "takes one path component, not %s", name);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s" TEMP_SUFFIX, name) >=
        sizeof(tmp))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "file name too long: %s", name);
    rc = check_replaceable(dirfd, name, shown, err);
    if (rc < 0)
        return rc;
    fd = create_temp(dirfd, tmp, mode, shown, err);
    if (fd < 0)
        return fd;
    if (fchmod(fd, mode) < 0 || file_write_all(fd, data, len) < 0 ||
        (durable && fsync(fd) < 0)) {
        once_error_set(err, ONCE_ERR_IO, "cannot write %s%s%s: %s", AT(shown),
                       tmp, strerror(errno));
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return -ONCE_ERR_IO;
    }
    if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
        once_error_set(err, ONCE_ERR_IO, "cannot write %s%s%s: %s", AT(shown),
                       name, strerror(errno));
        unlinkat(dirfd, tmp, 0);
        return -ONCE_ERR_IO;
    }
    return 0;
}
