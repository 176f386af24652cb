/*
 * export_files.c - the files and directories of a log export, written so
 * that nothing planted in the export directory can redirect them.
 *
 * The operator runs `oncectl log export` as the broker's user, often
 * root, into a directory others may have prepared. A planted
 * `README.txt.tmp -> victim` once made an export overwrite the victim, and
 * a planted `tile -> elsewhere` sent the tiles there. So nothing here
 * takes a path to the kernel: DIR is opened once (it must be the caller's
 * and writable by nobody else), every directory below it is opened one
 * component at a time with O_NOFOLLOW from its parent's descriptor, and
 * every file is created with O_EXCL | O_NOFOLLOW and renamed into place
 * (lib/file_io.c). A link met anywhere is refused with a message naming
 * it, never followed and never silently replaced: it means someone
 * tampered with the directory.
 *
 * Modes are set exactly, whatever the umask: the public parts 0644 in
 * 0755 directories, since auditors copy and publish them; the plain
 * evidence, personal data, 0600 in 0700 directories. An existing
 * directory or kept file of an older export gets the same modes, so
 * exporting again into an export made before the evidence was private
 * makes it private.
 *
 * Tiles are written in order and most share their directory with the one
 * before, so the last directory opened is kept open for the next file.
 */
#include "export_files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_io.h"

#define SHOWN_CAP (EXPORT_PATH_CAP + 1024)

/* Evidence in plain is personal data. */
static int is_personal(const char *path)
{
    size_t n = strlen(EXPORT_EVIDENCE_DIR);

    return strncmp(path, EXPORT_EVIDENCE_DIR, n) == 0 &&
           (path[n] == '/' || path[n] == '\0');
}

/* DIR joined with the first len bytes of rel, for messages. */
static void shown_path(const export_dir *d, char *out, const char *rel,
                       size_t len)
{
    snprintf(out, SHOWN_CAP, "%s%s%.*s", d->path, len ? "/" : "", (int)len,
             rel);
}

/* Length of the directory part of path, given its last component. */
static size_t dir_part(const char *path, const char *name)
{
    return name == path ? 0 : (size_t)(name - 1 - path);
}

int export_dir_open(export_dir *d, const char *path, once_error *err)
{
    memset(d, 0, sizeof(*d));
    d->path = path;
    d->err = err;
    d->cached_fd = -1;
    /* An existing DIR keeps its mode if it is safe: the operator may
     * have chosen 0750. */
    d->fd = file_dir_open(AT_FDCWD, path, 1, 0755, 0, NULL, err);
    return d->fd < 0 ? d->fd : 0;
}

void export_dir_close(export_dir *d)
{
    if (d->cached_fd >= 0)
        close(d->cached_fd);
    if (d->fd >= 0)
        close(d->fd);
    d->fd = d->cached_fd = -1;
}

/* The directory holding `path`, opened one component at a time without
 * following links (file_dir_open), created when `create` is set; *name
 * receives path's last component. The descriptor is borrowed: DIR's own
 * or the cached one. -ONCE_ERR_NOT_FOUND when a directory is missing and
 * create is unset. */
static int open_parent(export_dir *d, const char *path, int create,
                       const char **name)
{
    const char *slash = strrchr(path, '/'), *p, *end;
    char part[EXPORT_PATH_CAP], shown[SHOWN_CAP];
    mode_t mode = is_personal(path) ? 0700 : 0755;
    size_t dir_len;
    int fd, next;

    *name = slash ? slash + 1 : path;
    if (slash == NULL)
        return d->fd;
    dir_len = (size_t)(slash - path);
    if (dir_len >= sizeof(d->cached))
        return once_error_set(d->err, ONCE_ERR_INTERNAL, "path too long");
    if (d->cached_fd >= 0 && strlen(d->cached) == dir_len &&
        memcmp(d->cached, path, dir_len) == 0)
        return d->cached_fd;
    if (d->cached_fd >= 0) {
        close(d->cached_fd);
        d->cached_fd = -1;
    }
    fd = d->fd;
    for (p = path; p < slash; p = end + 1) {
        end = memchr(p, '/', (size_t)(slash - p));
        if (end == NULL)
            end = slash;
        memcpy(part, p, (size_t)(end - p));
        part[end - p] = '\0';
        shown_path(d, shown, path, p == path ? 0 : (size_t)(p - 1 - path));
        next = file_dir_open(fd, part, create, mode, 1, shown, d->err);
        if (fd != d->fd)
            close(fd);
        if (next < 0)
            return next;
        fd = next;
    }
    memcpy(d->cached, path, dir_len);
    d->cached[dir_len] = '\0';
    d->cached_fd = fd;
    return fd;
}

/* open_parent, and on success the parent as messages show it (DIR joined
 * with path's directory part) in shown, which holds SHOWN_CAP bytes. */
static int parent_of(export_dir *d, const char *path, int create,
                     const char **name, char *shown)
{
    int fd = open_parent(d, path, create, name);

    if (fd >= 0)
        shown_path(d, shown, path, dir_part(path, *name));
    return fd;
}

int export_dir_write(export_dir *d, const char *path, const uint8_t *data,
                     size_t len, int durable)
{
    char shown[SHOWN_CAP];
    const char *name;
    int fd = parent_of(d, path, 1, &name, shown);

    if (fd < 0)
        return fd;
    return file_write_atomic(fd, name, data, len,
                             is_personal(path) ? 0600 : 0644, durable, shown,
                             d->err);
}

int export_dir_open_file(export_dir *d, const char *path)
{
    char shown[SHOWN_CAP];
    const char *name;
    int fd = parent_of(d, path, 0, &name, shown);

    if (fd < 0)
        return fd;
    return file_open_regular(fd, name, shown, d->err);
}

/* 1 when path holds exactly data, 0 when it differs, -ONCE_ERR_NOT_FOUND
 * when it does not exist, another negative error when it cannot be read.
 * A file kept gets the mode a new one would. */
static int same_content(export_dir *d, const char *path, const uint8_t *data,
                        size_t len)
{
    mode_t mode = is_personal(path) ? 0600 : 0644;
    uint8_t chunk[65536];
    struct stat st;
    size_t off = 0;
    int fd, same = 1;

    fd = export_dir_open_file(d, path);
    if (fd < 0)
        return fd;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return once_error_set(d->err, ONCE_ERR_IO, "cannot read %s/%s: "
                                  "%s", d->path, path, strerror(errno));
        }
        if (n == 0)
            break;
        if ((size_t)n > len - off ||
            memcmp(chunk, data + off, (size_t)n) != 0) {
            same = 0;
            break;
        }
        off += (size_t)n;
    }
    same = same && off == len;
    if (same && fstat(fd, &st) == 0 && (st.st_mode & 07777) != mode &&
        fchmod(fd, mode) < 0) {
        close(fd);
        return once_error_set(d->err, ONCE_ERR_IO, "cannot set the mode of "
                              "%s/%s: %s", d->path, path, strerror(errno));
    }
    close(fd);
    return same;
}

int export_dir_put_immutable(export_dir *d, const char *path,
                             const uint8_t *data, size_t len)
{
    int rc = same_content(d, path, data, len);

    if (rc == 1)
        return 0;
    if (rc == 0)
        return once_error_set(d->err, ONCE_ERR_EXISTS,
                              "%s/%s exists with other content: the "
                              "directory holds an export of another log",
                              d->path, path);
    if (rc != -ONCE_ERR_NOT_FOUND)
        return rc;
    return export_dir_write(d, path, data, len, 0);
}

/* What an attempt to open something says of its being there: 1 when it
 * opened (fd is closed here), 0 when it is not found, else the error. */
static int opened(int fd)
{
    if (fd == -ONCE_ERR_NOT_FOUND)
        return 0;
    if (fd < 0)
        return fd;
    close(fd);
    return 1;
}

int export_dir_has_file(export_dir *d, const char *path)
{
    return opened(export_dir_open_file(d, path));
}

int export_dir_has_dir(export_dir *d, const char *name)
{
    return opened(file_dir_open(d->fd, name, 0, 0, 0, d->path, d->err));
}

int export_dir_remove_partials(export_dir *d, const char *base,
                               unsigned keep)
{
    char pdir[EXPORT_PATH_CAP + 2], name[16], shown[SHOWN_CAP];
    const char *last;
    struct dirent *de;
    int parent, fd, dfd;
    DIR *dir;

    snprintf(pdir, sizeof(pdir), "%s.p", base);
    parent = parent_of(d, pdir, 0, &last, shown);
    if (parent == -ONCE_ERR_NOT_FOUND)
        return 0;
    if (parent < 0)
        return parent;
    fd = file_dir_open(parent, last, 0, 0, 0, shown, d->err);
    if (fd == -ONCE_ERR_NOT_FOUND)
        return 0;
    if (fd < 0)
        return fd;
    dfd = dup(fd);
    dir = dfd < 0 ? NULL : fdopendir(dfd);
    if (dir == NULL) {
        if (dfd >= 0)
            close(dfd);
        close(fd);
        return once_error_set(d->err, ONCE_ERR_IO, "cannot read %s/%s: %s",
                              d->path, pdir, strerror(errno));
    }
    snprintf(name, sizeof(name), "%u", keep);
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (keep != 0 && strcmp(de->d_name, name) == 0))
            continue;
        /* unlinkat removes a link itself, never what it points to. */
        if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
            closedir(dir);
            close(fd);
            return once_error_set(d->err, ONCE_ERR_IO, "cannot remove a "
                                  "stale partial tile in %s/%s: %s", d->path,
                                  pdir, strerror(errno));
        }
    }
    closedir(dir);
    close(fd);
    if (keep == 0 && unlinkat(parent, last, AT_REMOVEDIR) < 0 &&
        errno != ENOENT)
        return once_error_set(d->err, ONCE_ERR_IO, "cannot remove %s/%s: %s",
                              d->path, pdir, strerror(errno));
    return 0;
}
