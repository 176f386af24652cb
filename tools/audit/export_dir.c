/*
 * export_dir.c - reading an export directory (docs/AUDIT.md).
 *
 * An export is a C2SP tlog-tiles directory (checkpoint, tile/<level>/...,
 * tile/entries/...) with the evidence bundles, the signed checkpoints and
 * the department keys beside it (broker/export.c writes it). Everything in
 * it may have been changed by whoever handled it, so every read here is of
 * a regular file of bounded size: a FIFO planted in the export must not
 * hang the run, a huge file must not exhaust memory, and a bundle that
 * does not split into its entries is a problem to report, not a crash.
 */
#include "export_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evidence_seal.h"
#include "once/once.h"
#include "tlog_tiles.h"
#include "util.h"

/* No file of an export is larger than a full evidence bundle of the
 * largest envelopes, sealed; a larger one is refused before it is read,
 * not allowed to exhaust memory. */
#define MAX_INPUT_FILE ((uint64_t)TLOG_TILE_WIDTH * \
                        (TLOG_EVIDENCE_LENGTH_BYTES + ONCE_MAX_MESSAGE) + \
                        EVIDENCE_SEAL_OVERHEAD)

int read_at(int dirfd, const char *path, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    size_t off = 0;
    /* O_NONBLOCK: a FIFO planted in an export must not hang the run; it
     * is refused as not a regular file below. */
    int fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), saved;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        saved = errno;
        close(fd);
        return -saved;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    if ((uint64_t)st.st_size > MAX_INPUT_FILE) {
        close(fd);
        return -EFBIG;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            saved = n < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return -saved;
        }
        off += (size_t)n;
    }
    close(fd);
    buf[off] = '\0';
    *data = buf;
    *len = off;
    return 0;
}

int export_open(export_dir *x, const char *path)
{
    int rc;

    memset(x, 0, sizeof(*x));
    x->path = path;
    x->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x->fd < 0) {
        fprintf(stderr, "once-audit: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    rc = read_at(x->fd, "checkpoint", &x->note, &x->note_len);
    if (rc < 0) {
        fprintf(stderr, "once-audit: cannot read %s/checkpoint: %s\n", path,
                strerror(-rc));
        close(x->fd);
        return -1;
    }
    return 0;
}

void export_close(export_dir *x)
{
    free(x->note);
    close(x->fd);
}

void tile_path(char *out, const char *prefix, uint64_t index,
               unsigned width)
{
    /* Paths of indexes below 2^64 always fit TLOG_PATH_MAX. */
    if (tlog_tile_path(out, TLOG_PATH_MAX, prefix, index, width) < 0)
        snprintf(out, TLOG_PATH_MAX, "%s/?", prefix);
}

void level_prefix(char *out, size_t cap, unsigned level)
{
    snprintf(out, cap, "tile/%u", level);
}

/* tlog_bundle_split with the reason in why, which the callers keep per
 * bundle in less room than a once_error (its reasons are short). */
int split_bundle(const uint8_t *data, size_t len, unsigned count,
                 unsigned length_bytes, size_t *offs, size_t *lens,
                 char *why, size_t why_cap)
{
    once_error err;
    size_t n;

    if (tlog_bundle_split(data, len, count, length_bytes, offs, lens,
                          &err) < 0) {
        n = strnlen(err.message, why_cap - 1);
        memcpy(why, err.message, n);
        why[n] = '\0';
        return -1;
    }
    return 0;
}

/* Reads leaf `index` from the entry bundles of an export of `size` leaves.
 * *leaf is malloc'd. */
int read_entry(int dirfd, uint64_t size, uint64_t index, uint8_t **leaf,
               size_t *leaf_len, char *why, size_t why_cap)
{
    size_t offs[TLOG_TILE_WIDTH], lens[TLOG_TILE_WIDTH];
    uint64_t b = index / TLOG_TILE_WIDTH;
    unsigned width = tlog_tile_width(size, 0, b);
    char path[TLOG_PATH_MAX];
    uint8_t *data;
    size_t len, at = (size_t)(index % TLOG_TILE_WIDTH);
    int rc;

    if (index >= size) {
        snprintf(why, why_cap, "leaf %" PRIu64 " is past the export's %" PRIu64
                 " leaves", index, size);
        return -1;
    }
    tile_path(path, "tile/entries", b, width);
    rc = read_at(dirfd, path, &data, &len);
    if (rc < 0) {
        snprintf(why, why_cap, "cannot read %s: %s", path, strerror(-rc));
        return -1;
    }
    if (split_bundle(data, len, width, TLOG_ENTRY_LENGTH_BYTES, offs, lens,
                     why, why_cap) < 0) {
        free(data);
        return -1;
    }
    *leaf = xmalloc(lens[at]);
    memcpy(*leaf, data + offs[at], lens[at]);
    *leaf_len = lens[at];
    free(data);
    return 0;
}
