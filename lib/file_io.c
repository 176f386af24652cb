/*
 * file_io.c - whole-file writes: key files, log exports, the auditor's
 * saved state.
 *
 * write(2) may write less than asked (a signal, a full pipe, some file
 * systems) and every caller here wants all or nothing, so the loop lives
 * in one place. Files that others read while they may be rewritten (an
 * export being extended, an auditor's state) go through a temporary name
 * and a rename, which POSIX makes atomic within a directory.
 */
#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_SUFFIX ".tmp"

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

int file_write_atomic(int dirfd, const char *name, const void *data,
                      size_t len, mode_t mode, int durable)
{
    char tmp[4096];
    int fd, saved;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s" TEMP_SUFFIX, name) >=
        sizeof(tmp))
        return -ENAMETOOLONG;
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) < 0 || file_write_all(fd, data, len) < 0 ||
        (durable && fsync(fd) < 0)) {
        saved = errno;
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return -saved;
    }
    if (close(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
        saved = errno;
        unlinkat(dirfd, tmp, 0);
        return -saved;
    }
    return 0;
}
