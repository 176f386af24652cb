/*
 * export.c - the exchange log as a directory an auditor can take away.
 *
 * An auditor must be able to check the log with nothing but the broker's
 * public key, on their own machine, without trusting the broker's software
 * or being able to talk to it. So the export is plain files in a published
 * layout, C2SP tlog-tiles, which any tlog client can read too:
 *
 *   checkpoint                the signed checkpoint of the exported tree
 *   tile/<L>/<N>[.p/<W>]      hash tiles: 256 node hashes of level 8L each
 *   tile/entries/<N>[.p/<W>]  entry bundles: the LogLeaf bytes of 256
 *                             leaves, each as u16be length || bytes
 *
 * and, outside the tlog-tiles names, what this log adds:
 *
 *   evidence/<N>[.p/<W>]      the signed envelopes behind the leaves of
 *                             bundle N, each as u32be length || bytes
 *                             (envelopes may exceed 64 KiB)
 *   checkpoints/<size>        every checkpoint the broker signed in the
 *                             exported range, so the auditor checks them all
 *   keys.txt                  each department's key and validity times
 *   README.txt                a short guide for the auditor
 *
 * Why the export can be extended: an auditor who checked last month's export
 * should only have to fetch and check what is new. Full tiles and bundles
 * never change once the tree has passed them, so an export into a directory
 * that holds an older export of the same log keeps them (after checking
 * they are byte-identical, which catches mixing two logs), adds fuller
 * versions of the partial ones, moves the checkpoint file forward, and only
 * then removes the partial tiles that the old checkpoint needed.
 *
 * Why files are written to a temporary name and renamed, and the checkpoint
 * file last after a syncfs: a reader, or a crash, never sees a half-written
 * file, and the checkpoint never names tiles that are not on disk yet.
 *
 * The export reads in one LMDB read transaction, so it sees one consistent
 * log while the broker keeps appending; LMDB keeps the pages of that
 * snapshot until the export ends.
 */
#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "export_keys.h"
#include "file_io.h"
#include "policy.h"
#include "tlog_tiles.h"

#define PATH_CAP (TLOG_PATH_MAX + 32)

typedef struct buffer {
    uint8_t *data;
    size_t len, cap;
} buffer;

typedef struct exporter {
    const char *dir; /* for messages */
    int dirfd;
    MDB_txn *txn;
    const store *s;
    const auditlog *log;
    uint64_t size;   /* exported tree size */
    buffer buf;
    once_error *err;
} exporter;

static int buffer_reserve(buffer *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 8192;
    uint8_t *p;

    if (more <= b->cap - b->len)
        return 0;
    while (cap - b->len < more)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buffer_append(exporter *x, const void *data, size_t len)
{
    if (buffer_reserve(&x->buf, len) < 0)
        return once_error_set(x->err, ONCE_ERR_NO_MEMORY,
                              "out of memory building an export file");
    memcpy(x->buf.data + x->buf.len, data, len);
    x->buf.len += len;
    return 0;
}

static int io_error(exporter *x, const char *what, const char *path)
{
    return once_error_set(x->err, ONCE_ERR_IO, "cannot %s %s/%s: %s", what,
                          x->dir, path, strerror(errno));
}

/* Creates every missing directory on the way to path (mode 0755). */
static int make_parents(exporter *x, const char *path)
{
    char part[PATH_CAP];
    const char *slash;

    for (slash = strchr(path, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        size_t len = (size_t)(slash - path);

        memcpy(part, path, len);
        part[len] = '\0';
        if (mkdirat(x->dirfd, part, 0755) == 0) {
            /* Exactly 0755 whatever the umask: auditors copy these. */
            if (fchmodat(x->dirfd, part, 0755, 0) < 0)
                return io_error(x, "set the mode of", part);
        } else if (errno != EEXIST) {
            return io_error(x, "create directory", part);
        }
    }
    return 0;
}

/* Writes path through a temporary file and a rename (file_io.c); fsyncs
 * the file first when `durable` is set. */
static int write_atomic(exporter *x, const char *path, const uint8_t *data,
                        size_t len, int durable)
{
    int rc = make_parents(x, path);

    if (rc < 0)
        return rc;
    /* Exactly 0644 whatever the umask: auditors copy these. */
    rc = file_write_atomic(x->dirfd, path, data, len, 0644, durable);
    if (rc < 0) {
        errno = -rc;
        return io_error(x, "write", path);
    }
    return 0;
}

/* 1 when path holds exactly data, 0 when it differs, -ENOENT when it does
 * not exist, another negative error when it cannot be read. */
static int same_content(exporter *x, const char *path, const uint8_t *data,
                        size_t len)
{
    uint8_t chunk[65536];
    size_t off = 0;
    int fd, same = 1;

    fd = openat(x->dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        return io_error(x, "open", path);
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            n = io_error(x, "read", path);
            close(fd);
            return (int)n;
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
    close(fd);
    return same && off == len;
}

/* Writes a file that must never change once written: an existing one is
 * kept if identical and is an error if not. */
static int put_immutable(exporter *x, const char *path, const uint8_t *data,
                         size_t len)
{
    int rc = same_content(x, path, data, len);

    if (rc == 1)
        return 0;
    if (rc == 0)
        return once_error_set(x->err, ONCE_ERR_EXISTS,
                              "%s/%s exists with other content: the "
                              "directory holds an export of another log",
                              x->dir, path);
    if (rc != -ENOENT)
        return rc;
    return write_atomic(x, path, data, len, 0);
}

/* Removes the partial versions in "<base>.p/" other than width `keep`
 * (keep 0: all of them, and the directory). */
static int remove_stale_partials(exporter *x, const char *base, unsigned keep)
{
    char pdir[PATH_CAP + 2], name[16];
    struct dirent *de;
    DIR *d;
    int fd;

    snprintf(pdir, sizeof(pdir), "%s.p", base);
    fd = openat(x->dirfd, pdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : io_error(x, "open", pdir);
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return io_error(x, "read", pdir);
    }
    snprintf(name, sizeof(name), "%u", keep);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            (keep != 0 && strcmp(de->d_name, name) == 0))
            continue;
        if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
            closedir(d);
            return io_error(x, "remove a stale partial tile in", pdir);
        }
    }
    closedir(d);
    if (keep == 0 && unlinkat(x->dirfd, pdir, AT_REMOVEDIR) < 0 &&
        errno != ENOENT)
        return io_error(x, "remove", pdir);
    return 0;
}

/* Writes the buffer as tile `index` of width `width` under prefix. */
static int put_tile(exporter *x, const char *prefix, uint64_t index,
                    unsigned width)
{
    char path[PATH_CAP];

    if (tlog_tile_path(path, sizeof(path), prefix, index, width) < 0)
        return once_error_set(x->err, ONCE_ERR_INTERNAL,
                              "tile path too long");
    if (width == TLOG_TILE_WIDTH)
        return put_immutable(x, path, x->buf.data, x->buf.len);
    return write_atomic(x, path, x->buf.data, x->buf.len, 0);
}

/* After the checkpoint has moved from old_size to x->size: removes the
 * partial tiles and bundles only the old checkpoint needed. At most the
 * rightmost tile of each level was partial at old_size. */
static int remove_old_partials(exporter *x, uint64_t old_size)
{
    static const char *const bundles[] = {"tile/entries", "evidence"};
    char prefix[16], base[PATH_CAP];
    unsigned level, old_width, i;
    uint64_t t;
    int rc;

    for (level = 0; level < TLOG_MAX_LEVELS; level++) {
        t = tlog_level_hashes(old_size, level) / TLOG_TILE_WIDTH;
        old_width = tlog_tile_width(old_size, level, t);
        if (old_width == 0 || old_width == TLOG_TILE_WIDTH)
            continue;
        snprintf(prefix, sizeof(prefix), "tile/%u", level);
        /* Level 0's numbering also names the entry and evidence bundles. */
        for (i = 0; i < (level == 0 ? 3u : 1u); i++) {
            if (tlog_tile_path(base, sizeof(base),
                               i == 0 ? prefix : bundles[i - 1], t,
                               TLOG_TILE_WIDTH) < 0)
                return once_error_set(x->err, ONCE_ERR_INTERNAL,
                                      "tile path too long");
            rc = remove_stale_partials(
                x, base, tlog_tile_width(x->size, level, t) % TLOG_TILE_WIDTH);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int export_hash_tiles(exporter *x)
{
    char prefix[16];
    merkle_hash h;
    uint64_t t, count;
    unsigned level, width, j;
    int rc;

    for (level = 0; level < TLOG_MAX_LEVELS; level++) {
        count = tlog_tile_count(x->size, level);
        if (count == 0)
            break;
        snprintf(prefix, sizeof(prefix), "tile/%u", level);
        for (t = 0; t < count; t++) {
            width = tlog_tile_width(x->size, level, t);
            x->buf.len = 0;
            for (j = 0; j < width; j++) {
                rc = auditlog_node(x->txn, x->log, TLOG_TILE_HEIGHT * level,
                                   t * TLOG_TILE_WIDTH + j, h, x->err);
                if (rc == 0)
                    rc = buffer_append(x, h, sizeof(h));
                if (rc < 0)
                    return rc;
            }
            rc = put_tile(x, prefix, t, width);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int append_length_prefixed(exporter *x, const MDB_val *v,
                                  int length_bytes)
{
    uint8_t len[4];
    int i;

    for (i = 0; i < length_bytes; i++)
        len[i] = (uint8_t)(v->mv_size >> (8 * (length_bytes - 1 - i)));
    if (buffer_append(x, len, (size_t)length_bytes) < 0)
        return -ONCE_ERR_NO_MEMORY;
    return buffer_append(x, v->mv_data, v->mv_size);
}

/* Entry bundle and evidence bundle of every bundle from `first` on. */
static int export_bundles(exporter *x, uint64_t first)
{
    uint64_t b, count = tlog_tile_count(x->size, 0), i, end;
    unsigned width;
    MDB_val v;
    int rc;

    for (b = first; b < count; b++) {
        width = tlog_tile_width(x->size, 0, b);
        end = b * TLOG_TILE_WIDTH + width;
        x->buf.len = 0;
        for (i = b * TLOG_TILE_WIDTH; i < end; i++) {
            rc = auditlog_leaf_get(x->txn, x->log, i, &v, x->err);
            if (rc == 0)
                rc = append_length_prefixed(x, &v,
                                            TLOG_ENTRY_LENGTH_BYTES);
            if (rc < 0)
                return rc;
        }
        rc = put_tile(x, "tile/entries", b, width);
        if (rc < 0)
            return rc;
        x->buf.len = 0;
        for (i = b * TLOG_TILE_WIDTH; i < end; i++) {
            rc = auditlog_evidence_get(x->txn, x->log, i, &v, x->err);
            if (rc == 0)
                rc = append_length_prefixed(x, &v,
                                            TLOG_EVIDENCE_LENGTH_BYTES);
            if (rc < 0)
                return rc;
        }
        rc = put_tile(x, "evidence", b, width);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int export_one_checkpoint(uint64_t size, const MDB_val *note,
                                 void *arg)
{
    exporter *x = arg;
    char path[PATH_CAP];

    snprintf(path, sizeof(path), "checkpoints/%" PRIu64, size);
    return put_immutable(x, path, note->mv_data, note->mv_size);
}

static int append_key_line(const department *d, void *arg)
{
    exporter *x = arg;
    char line[512 + POLICY_MAX_DEPT_NAME];
    export_key k;
    int n;

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", d->id);
    memcpy(k.public_key, d->public_key, ONCE_PUBLIC_KEY_BYTES);
    k.valid_from = d->created_at;
    k.suspended = d->status == DEPARTMENT_SUSPENDED;
    k.valid_until = k.suspended ? d->changed_at : 0;
    k.name = d->name;
    k.name_len = strnlen(d->name, POLICY_MAX_DEPT_NAME);
    n = export_keys_line_format(&k, line, sizeof(line), x->err);
    if (n < 0)
        return n;
    return buffer_append(x, line, (size_t)n);
}

static const char keys_header[] =
    "# once department keys, one line per key:\n"
    "#   id public-key-hex valid-from valid-until status name...\n"
    "# Times are Unix milliseconds on the broker's clock; valid-until 0 means\n"
    "# still valid. A suspended department's key stops authorizing\n"
    "# exchanges at valid-until. This file is not signed by the broker:\n"
    "# compare each key with the one its department holds.\n";

static int export_keys(exporter *x)
{
    int rc;

    x->buf.len = 0;
    rc = buffer_append(x, keys_header, sizeof(keys_header) - 1);
    if (rc == 0)
        rc = policy_department_list(x->txn, x->s, append_key_line, x, x->err);
    if (rc < 0)
        return rc;
    return write_atomic(x, "keys.txt", x->buf.data, x->buf.len, 0);
}

static const char readme[] =
    "This directory is an export of a once exchange log, for auditors.\n"
    "\n"
    "Every publish, revoke and request the broker handled, granted or\n"
    "refused, is one leaf of an RFC 9162 Merkle tree, and the broker signed\n"
    "checkpoints (tree size and root) as the tree grew. Nothing here needs\n"
    "to be trusted except the broker's public key, which you must obtain\n"
    "from the broker's operator out of band, and the department keys in\n"
    "keys.txt, which you should compare with the departments' own.\n"
    "\n"
    "  checkpoint                the signed checkpoint of this export (C2SP\n"
    "                            tlog-checkpoint signed note)\n"
    "  tile/<L>/<N>[.p/<W>]      hash tiles (C2SP tlog-tiles, height 8)\n"
    "  tile/entries/<N>[.p/<W>]  leaves, 256 per bundle, each u16be length\n"
    "                            then the LogLeaf protobuf bytes\n"
    "  evidence/<N>[.p/<W>]      the department-signed envelopes behind the\n"
    "                            leaves of bundle N, each u32be length then\n"
    "                            the envelope bytes\n"
    "  checkpoints/<size>        every checkpoint the broker signed\n"
    "  keys.txt                  department keys and validity times\n"
    "\n"
    "Check everything (tree, tiles, every checkpoint, every envelope):\n"
    "\n"
    "  once-audit verify DIR --key broker.pub\n"
    "\n"
    "(For an export of a range that starts at leaf S, add --from S.)\n"
    "\n"
    "Prove one exchange to someone else, and check such a proof:\n"
    "\n"
    "  once-audit prove DIR INDEX -o leaf.tlog-proof\n"
    "  once-audit check-proof leaf.tlog-proof --key broker.pub\n"
    "\n"
    "Show that the log only grew since a checkpoint you kept:\n"
    "\n"
    "  once-audit consistency OLD_CHECKPOINT DIR --key broker.pub\n"
    "\n"
    "List the exchanges about one subject (needs the deployment's audit key):\n"
    "\n"
    "  once-audit subject DIR --audit-key audit.key --type TYPE --subject ID\n"
    "\n"
    "docs/AUDIT.md in the once sources describes every format in detail.\n";

/* Refuses to extend a directory that holds another log, a newer tree, or
 * an older one that `start` would leave a gap after. *old_size receives
 * the size of the export found, or UINT64_MAX when there is none. */
static int check_existing(exporter *x, uint64_t start, uint64_t *old_size)
{
    char note[CHECKPOINT_MAX_NOTE + 1];
    checkpoint found;
    MDB_val ours;
    uint64_t size;
    ssize_t n;
    int fd;

    *old_size = UINT64_MAX;
    fd = openat(x->dirfd, "checkpoint", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : io_error(x, "open", "checkpoint");
    n = read(fd, note, sizeof(note));
    close(fd);
    if (n < 0)
        return io_error(x, "read", "checkpoint");
    /* Parsed only to find this log's note of that size, which is then
     * compared whole. */
    if (checkpoint_parse_unverified(note, (size_t)n, &found, NULL) < 0 ||
        auditlog_checkpoint_get(x->txn, x->log, found.size, &ours,
                                NULL) < 0 ||
        ours.mv_size != (size_t)n || memcmp(ours.mv_data, note, ours.mv_size))
        return once_error_set(x->err, ONCE_ERR_EXISTS,
                              "%s/checkpoint is not a checkpoint of this "
                              "log: refusing to mix two logs in one export",
                              x->dir);
    size = found.size;
    if (size > x->size)
        return once_error_set(x->err, ONCE_ERR_EXISTS,
                              "%s already holds a tree of %" PRIu64
                              " leaves, newer than %" PRIu64,
                              x->dir, size, x->size);
    if (start > size)
        return once_error_set(x->err, ONCE_ERR_EXISTS,
                              "%s holds leaves up to %" PRIu64
                              "; starting at %" PRIu64 " would leave a gap",
                              x->dir, size, start);
    *old_size = size;
    return 0;
}

static int export_in_txn(exporter *x, uint64_t start, uint64_t end)
{
    MDB_val note;
    uint64_t first_bundle, old_size;
    int rc;

    rc = auditlog_checkpoint_floor(x->txn, x->log, end ? end : UINT64_MAX,
                                   &x->size, &note, x->err);
    if (rc < 0)
        return rc;
    if (start > x->size)
        return once_error_set(x->err, ONCE_ERR_INVALID_ARGUMENT,
                              "start %" PRIu64 " is past the exported tree "
                              "size %" PRIu64,
                              start, x->size);
    rc = check_existing(x, start, &old_size);
    if (rc < 0)
        return rc;
    first_bundle = start / TLOG_TILE_WIDTH;
    rc = export_hash_tiles(x);
    if (rc == 0)
        rc = export_bundles(x, first_bundle);
    if (rc == 0)
        rc = auditlog_checkpoint_each(x->txn, x->log,
                                      first_bundle * TLOG_TILE_WIDTH, x->size,
                                      export_one_checkpoint, x, x->err);
    if (rc == 0)
        rc = export_keys(x);
    if (rc == 0)
        rc = write_atomic(x, "README.txt", (const uint8_t *)readme,
                          sizeof(readme) - 1, 0);
    if (rc < 0)
        return rc;
    /* Everything the checkpoint vouches for reaches the disk first. */
    if (syncfs(x->dirfd) < 0)
        return io_error(x, "sync", ".");
    rc = write_atomic(x, "checkpoint", note.mv_data, note.mv_size, 1);
    if (rc < 0)
        return rc;
    if (fsync(x->dirfd) < 0)
        return io_error(x, "sync", ".");
    /* Only now may what the old checkpoint needed go. */
    return old_size == UINT64_MAX ? 0 : remove_old_partials(x, old_size);
}

int export_log(const store *s, const auditlog *log, const char *dir,
               uint64_t start, uint64_t end, once_error *err)
{
    exporter x;
    int rc;

    memset(&x, 0, sizeof(x));
    x.dir = dir;
    x.s = s;
    x.log = log;
    x.err = err;
    if (mkdir(dir, 0755) == 0) {
        if (chmod(dir, 0755) < 0)
            return once_error_set(err, ONCE_ERR_IO, "cannot set the mode of "
                                  "%s: %s", dir, strerror(errno));
    } else if (errno != EEXIST) {
        return once_error_set(err, ONCE_ERR_IO, "cannot create %s: %s", dir,
                              strerror(errno));
    }
    x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x.dirfd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s: %s", dir,
                              strerror(errno));
    rc = store_begin(s, 1, &x.txn, err);
    if (rc == 0) {
        rc = export_in_txn(&x, start, end);
        mdb_txn_abort(x.txn);
    }
    close(x.dirfd);
    free(x.buf.data);
    return rc;
}
