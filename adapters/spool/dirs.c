/*
 * dirs.c - the spool's directories, and the renames that move a file
 * through them.
 *
 * Under spool_directory:
 *
 *   outbox/          records to publish, one JSON file each (the writer's)
 *   requests/        requests to make, one JSON file each (the writer's)
 *   work/outbox/     files the spool has taken and not finished
 *   work/requests/
 *   sent/            finished files: published records (with
 *                    NAME.receipt.json beside each) and answered requests
 *   answers/         NAME: the answer to requests/NAME (verified fields
 *                    and the receipt)
 *   failed/          refused files, NAME.problem.json beside each (RFC
 *                    9457, `code` the stable once error name)
 *   notices/         notices from the broker, when asked for (notices.c)
 *
 * A file is taken only when complete: the writer writes it under a name
 * the spool ignores (starting with '.' or ending in ".tmp") and renames it
 * to its final name when it is complete, which POSIX makes atomic. Names
 * over SPOOL_MAX_NAME bytes are not taken either. Every state change is a
 * rename within one filesystem (dirs_open refuses directories on more than
 * one): outbox/NAME -> work/outbox/NAME -> sent/ or failed/. So at any
 * moment, a kill -9 included, a file is in exactly one place, and a
 * restart finishes what is in work/ before it takes anything new. Renames
 * never replace: a finished file whose name is already in sent/ or
 * failed/ goes there as NAME.<16 hex digits of its idempotency key>.
 *
 * The answer files are written before the rename that finishes the file,
 * under NAME.tmp first (file_write_atomic: created O_EXCL|O_NOFOLLOW, mode
 * 0600, fsynced, renamed into place). A crash between the two leaves the
 * answer and the file still in work/; the restart writes the same answer
 * again (from the idempotency state) over its own earlier copy, which it
 * recognises by its content, and finishes the file.
 *
 * Answers and records hold personal data: every directory must be the
 * spool user's and closed to group and others (created 0700; chmod 700
 * otherwise), files are 0600, and the department's system reads and
 * writes them as the same user. A lock on spool_directory keeps a second
 * once-spool off the same directories.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_io.h"
#include "spool.h"

static const char *const queue_name[2] = { "outbox", "requests" };

static int open_sub(int at, const char *name, const char *shown,
                    dev_t *dev, once_error *err)
{
    struct stat st;
    int fd = file_dir_open(at, name, 1, 0700, 0, shown, err);

    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0) {
        close(fd);
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s/%s must "
                              "be closed to group and others (chmod 700): "
                              "it holds personal data", shown, name);
    }
    if (*dev == 0) {
        *dev = st.st_dev;
    } else if (st.st_dev != *dev) {
        close(fd);
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s/%s is on "
                              "another filesystem than the spool directory: "
                              "the spool moves files by rename, which "
                              "works within one filesystem only", shown,
                              name);
    }
    return fd;
}

int dirs_open(spool_dirs *d, const char *root, once_error *err)
{
    dev_t dev = 0;
    int work, q, rc;

    d->root = d->sent = d->answers = d->failed = -1;
    d->in[0] = d->in[1] = d->work[0] = d->work[1] = d->notices = -1;
    if ((d->root = open_sub(AT_FDCWD, root, ".", &dev, err)) < 0)
        return d->root;
    if (flock(d->root, LOCK_EX | LOCK_NB) < 0)
        return once_error_set(err, ONCE_ERR_EXISTS, "another once-spool "
                              "uses %s", root);
    if ((work = open_sub(d->root, "work", root, &dev, err)) < 0)
        return work;
    for (q = 0; q < 2; q++) {
        if ((rc = d->in[q] = open_sub(d->root, queue_name[q], root, &dev,
                                      err)) < 0 ||
            (rc = d->work[q] = open_sub(work, queue_name[q], "work", &dev,
                                        err)) < 0) {
            close(work);
            return rc;
        }
    }
    close(work);
    if ((rc = d->sent = open_sub(d->root, "sent", root, &dev, err)) < 0 ||
        (rc = d->answers = open_sub(d->root, "answers", root, &dev,
                                    err)) < 0 ||
        (rc = d->failed = open_sub(d->root, "failed", root, &dev, err)) < 0)
        return rc;
    return 0;
}

int dirs_open_notices(spool_dirs *d, const char *root, once_error *err)
{
    struct stat st;
    dev_t dev;

    if (fstat(d->root, &st) < 0)
        return once_error_set(err, ONCE_ERR_IO, "%s: %s", root,
                              strerror(errno));
    dev = st.st_dev;
    d->notices = open_sub(d->root, "notices", root, &dev, err);
    return d->notices < 0 ? d->notices : 0;
}

void dirs_close(spool_dirs *d)
{
    int fds[] = { d->in[0], d->in[1], d->work[0], d->work[1], d->sent,
                  d->answers, d->failed, d->notices, d->root };
    size_t i;

    for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

bool dirs_takes_name(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && name[0] != '.' && n <= SPOOL_MAX_NAME &&
           !(n >= 4 && strcmp(name + n - 4, ".tmp") == 0);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dirs_list(int dirfd, char ***names, size_t *count, once_error *err)
{
    size_t n = 0, cap = 0, i;
    char **list = NULL, **grown;
    struct dirent *e;
    int fd = dup(dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

    *names = NULL;
    *count = 0;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return once_error_set(err, ONCE_ERR_IO, "cannot list a spool "
                              "directory: %s", strerror(errno));
    }
    rewinddir(dir);
    while ((e = readdir(dir)) != NULL) {
        if (!dirs_takes_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL)
                goto nomem;
            list = grown;
        }
        if ((list[n] = strdup(e->d_name)) == NULL)
            goto nomem;
        n++;
    }
    closedir(dir);
    if (n > 1)
        qsort(list, n, sizeof(*list), by_name);
    *names = list;
    *count = n;
    return 0;
nomem:
    closedir(dir);
    for (i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
}

int dirs_take(spool_dirs *d, enum spool_queue q, const char *name,
              once_error *err)
{
    if (renameat2(d->in[q], name, d->work[q], name, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == ENOENT)
        return -ONCE_ERR_NOT_FOUND;
    return once_error_set(err, errno == EEXIST ? ONCE_ERR_EXISTS
                                               : ONCE_ERR_IO,
                          "cannot take a file from %s/: %s", queue_name[q],
                          strerror(errno));
}

int dirs_read(spool_dirs *d, enum spool_queue q, const char *name,
              size_t max, char **data, size_t *len, once_error *err)
{
    struct stat st;
    size_t got = 0;
    ssize_t n;
    char *buf;
    int fd = file_open_regular(d->work[q], name, "work", err);

    *data = NULL;
    *len = 0;
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0 || st.st_size < 0) {
        close(fd);
        return once_error_set(err, ONCE_ERR_IO, "cannot read a taken file: "
                              "%s", strerror(errno));
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "the file is over "
                              "max_file_bytes (%zu)", max);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return once_error_set(err, ONCE_ERR_IO, "a taken file changed size "
                              "while read");
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

/* Whether dirfd/name is absent, or a regular file holding exactly text
 * (an answer this spool wrote before a crash). */
static bool absent_or_same(int dirfd, const char *name, const char *text)
{
    size_t len = strlen(text);
    struct stat st;
    char *buf;
    bool same;
    int fd;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT;
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size != len)
        return false;
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    buf = malloc(len + 1);
    same = fd >= 0 && buf != NULL && read(fd, buf, len + 1) == (ssize_t)len &&
           memcmp(buf, text, len) == 0;
    free(buf);
    if (fd >= 0)
        close(fd);
    return same;
}

/* Names tried for a finished file: NAME, NAME.KEY, NAME.KEY.2 .. .99. */
#define DIRS_FINISH_ATTEMPTS 100

int dirs_finish(spool_dirs *d, enum spool_queue q, const char *name,
                const char *suffix, bool failed, const char *answer,
                once_error *err)
{
    int dest = failed ? d->failed : d->sent;
    int answer_dir = failed || q == QUEUE_OUTBOX ? dest : d->answers;
    const char *ending = failed ? ".problem.json"
                                : q == QUEUE_OUTBOX ? ".receipt.json" : "";
    char final[SPOOL_MAX_NAME + 24], answer_name[SPOOL_MAX_NAME + 40];
    struct stat st;
    int attempt, rc;

    /* The same bytes under the same name a third time (or two files over
     * the limit, which share the suffix) must not stop the spool: a
     * number follows the suffix. */
    for (attempt = 0; attempt < DIRS_FINISH_ATTEMPTS; attempt++) {
        if (attempt == 0)
            snprintf(final, sizeof(final), "%s", name);
        else if (attempt == 1)
            snprintf(final, sizeof(final), "%s.%.16s", name, suffix);
        else
            snprintf(final, sizeof(final), "%s.%.16s.%d", name, suffix,
                     attempt);
        snprintf(answer_name, sizeof(answer_name), "%s%s", final, ending);
        if (fstatat(dest, final, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
            errno == ENOENT && absent_or_same(answer_dir, answer_name, answer))
            break;
    }
    if (attempt == DIRS_FINISH_ATTEMPTS)
        return once_error_set(err, ONCE_ERR_EXISTS, "%s and %s.%.16s[.N] "
                              "are all taken in %s/", name, name, suffix,
                              failed ? "failed" : "sent");
    rc = file_write_atomic(answer_dir, answer_name, answer, strlen(answer),
                           0600, 1, failed ? "failed" : "answers", err);
    if (rc < 0)
        return rc;
    if (renameat2(d->work[q], name, dest, final, RENAME_NOREPLACE) < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot move a finished "
                              "file to %s/: %s", failed ? "failed" : "sent",
                              strerror(errno));
    return 0;
}
