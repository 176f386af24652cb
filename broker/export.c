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
 * Every file goes through export_files.c, which walks DIR with openat and
 * O_NOFOLLOW and creates files with O_EXCL | O_NOFOLLOW: the operator runs
 * this as the broker's user, often root, into a directory others may have
 * prepared, and a link planted in it is refused, never followed.
 *
 * Why the evidence is apart. Tiles, entries, checkpoints and keys hold
 * hashes, keyed subject hashes and department names: publishable. The
 * evidence envelopes hold raw subjects and disclosed field values:
 * personal data, so evidence/ is 0700 and its files 0600, and an export
 * meant to travel seals them to one auditor's key instead
 * (evidence-sealed/, lib/evidence_seal.c). Sealing is randomized, so a
 * full sealed bundle already in DIR is kept, not compared: the auditor's
 * verify checks each envelope against the digest in its signed leaf.
 *
 * Why short read transactions. An LMDB reader pins every page of its
 * snapshot, and an export of a large log takes minutes: held for all of
 * it, the broker's writer could not reuse a page freed meanwhile and the
 * map would fill. The tree size is fixed first (a signed checkpoint), and
 * everything below it (leaves, evidence, nodes, checkpoints) never changes
 * once written, so reading it in many transactions yields the same bytes
 * as one would. The export renews its read transaction for each tile,
 * bundle or batch of checkpoints and releases it while it writes files.
 * keys.txt is read in one transaction of its own.
 */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byte_buffer.h"
#include "checkpoint.h"
#include "export_keys.h"
#include "evidence_seal.h"
#include "export_files.h"
#include "policy.h"
#include "tlog_tiles.h"

#define PATH_CAP EXPORT_PATH_CAP
/* Checkpoints written per read transaction. */
#define CHECKPOINT_BATCH 64

#define EVIDENCE_DIR EXPORT_EVIDENCE_DIR
#define SEALED_DIR "evidence-sealed"
#define SEALED_KEY_FILE SEALED_DIR "/auditor.pub"

typedef struct exporter {
    const char *dir; /* for messages */
    export_dir files;
    MDB_txn *txn;
    int txn_live;    /* 1 while txn holds a snapshot */
    const store *s;
    const auditlog *log;
    const export_options *opt;
    uint64_t size;   /* exported tree size */
    char note[CHECKPOINT_MAX_NOTE];
    size_t note_len;
    /* buf builds each file; it holds evidence in the clear, so it is
     * wiped (byte_buffer.c). sealed holds only ciphertext. */
    byte_buffer buf, sealed;
    once_error *err;
} exporter;

static int buffer_append(exporter *x, const void *data, size_t len)
{
    if (byte_buffer_append(&x->buf, data, len) < 0)
        return once_error_set(x->err, ONCE_ERR_NO_MEMORY,
                              "out of memory building an export file");
    return 0;
}

/* ---- short read transactions ---- */

/* Takes a fresh snapshot of the log (everything below x->size is the same
 * in every one). */
static int txn_resume(exporter *x)
{
    int rc;

    if (x->txn_live)
        return 0;
    rc = mdb_txn_renew(x->txn);
    if (rc != 0)
        return store_error(rc, "renew the export's read transaction",
                           x->err);
    x->txn_live = 1;
    return 0;
}

/* Lets go of the snapshot before writing files, and reports progress. */
static void txn_pause(exporter *x, const char *what, uint64_t done,
                      uint64_t total)
{
    if (x->txn_live) {
        mdb_txn_reset(x->txn);
        x->txn_live = 0;
    }
    if (x->opt->progress != NULL)
        x->opt->progress(x->opt->progress_arg, what, done, total);
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
        return export_dir_put_immutable(&x->files, path, x->buf.data,
                                        x->buf.len);
    return export_dir_write(&x->files, path, x->buf.data, x->buf.len, 0);
}

/* Writes the buffer, an evidence bundle, sealed to the auditor's key. A
 * full one already there is kept: sealing is randomized, so it cannot be
 * compared, and the auditor checks its envelopes against the leaves. */
static int put_sealed(exporter *x, uint64_t index, unsigned width)
{
    char path[PATH_CAP];
    int rc;

    if (tlog_tile_path(path, sizeof(path), SEALED_DIR, index, width) < 0)
        return once_error_set(x->err, ONCE_ERR_INTERNAL,
                              "tile path too long");
    if (width == TLOG_TILE_WIDTH) {
        rc = export_dir_has_file(&x->files, path);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    x->sealed.len = 0;
    if (byte_buffer_reserve(&x->sealed,
                            x->buf.len + EVIDENCE_SEAL_OVERHEAD) < 0)
        return once_error_set(x->err, ONCE_ERR_NO_MEMORY,
                              "out of memory sealing an evidence bundle");
    rc = evidence_seal(x->opt->seal_to, x->buf.data, x->buf.len,
                       x->sealed.data, x->err);
    if (rc < 0)
        return rc;
    x->sealed.len = x->buf.len + EVIDENCE_SEAL_OVERHEAD;
    return export_dir_write(&x->files, path, x->sealed.data, x->sealed.len, 0);
}

/* After the checkpoint has moved from old_size to x->size: removes the
 * partial tiles and bundles only the old checkpoint needed. At most the
 * rightmost tile of each level was partial at old_size. */
static int remove_old_partials(exporter *x, uint64_t old_size)
{
    const char *bundles[] = {"tile/entries",
                             x->opt->seal_to ? SEALED_DIR : EVIDENCE_DIR};
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
            rc = export_dir_remove_partials(
                &x->files, base,
                tlog_tile_width(x->size, level, t) % TLOG_TILE_WIDTH);
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
    uint64_t t, count, done = 0, total = 0;
    unsigned level, width, j;
    int rc;

    for (level = 0; level < TLOG_MAX_LEVELS; level++)
        total += tlog_tile_count(x->size, level);
    for (level = 0; level < TLOG_MAX_LEVELS; level++) {
        count = tlog_tile_count(x->size, level);
        if (count == 0)
            break;
        snprintf(prefix, sizeof(prefix), "tile/%u", level);
        for (t = 0; t < count; t++) {
            width = tlog_tile_width(x->size, level, t);
            x->buf.len = 0;
            rc = txn_resume(x);
            for (j = 0; rc == 0 && j < width; j++) {
                rc = auditlog_node(x->txn, x->log, TLOG_TILE_HEIGHT * level,
                                   t * TLOG_TILE_WIDTH + j, h, x->err);
                if (rc == 0)
                    rc = buffer_append(x, h, sizeof(h));
            }
            txn_pause(x, "hash tiles", done, total);
            if (rc == 0)
                rc = put_tile(x, prefix, t, width);
            if (rc < 0)
                return rc;
            done++;
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

/* Reads the leaves (evidence 0) or envelopes (evidence 1) of bundle b
 * into the buffer, in a snapshot of its own, and releases it. */
static int read_bundle(exporter *x, uint64_t b, unsigned width, int evidence,
                       uint64_t first)
{
    uint64_t i, end = b * TLOG_TILE_WIDTH + width;
    MDB_val v;
    int rc = txn_resume(x);

    x->buf.len = 0;
    for (i = b * TLOG_TILE_WIDTH; rc == 0 && i < end; i++) {
        rc = evidence ? auditlog_evidence_get(x->txn, x->log, i, &v, x->err)
                      : auditlog_leaf_get(x->txn, x->log, i, &v, x->err);
        if (rc == 0)
            rc = append_length_prefixed(x, &v,
                                        evidence ? TLOG_EVIDENCE_LENGTH_BYTES
                                                 : TLOG_ENTRY_LENGTH_BYTES);
    }
    txn_pause(x, "bundles", b - first, tlog_tile_count(x->size, 0) - first);
    return rc;
}

/* Entry bundle and evidence bundle of every bundle from `first` on. */
static int export_bundles(exporter *x, uint64_t first)
{
    uint64_t b, count = tlog_tile_count(x->size, 0);
    unsigned width;
    int rc;

    for (b = first; b < count; b++) {
        width = tlog_tile_width(x->size, 0, b);
        rc = read_bundle(x, b, width, 0, first);
        if (rc == 0)
            rc = put_tile(x, "tile/entries", b, width);
        if (rc == 0)
            rc = read_bundle(x, b, width, 1, first);
        if (rc == 0)
            rc = x->opt->seal_to ? put_sealed(x, b, width)
                                 : put_tile(x, EVIDENCE_DIR, b, width);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A batch of checkpoints copied out of a snapshot: sizes[i] and the
 * note's end offset in the buffer. */
typedef struct checkpoint_batch {
    exporter *x;
    uint64_t sizes[CHECKPOINT_BATCH];
    size_t ends[CHECKPOINT_BATCH];
    size_t n;
} checkpoint_batch;

static int collect_checkpoint(uint64_t size, const MDB_val *note, void *arg)
{
    checkpoint_batch *cb = arg;

    if (cb->n == CHECKPOINT_BATCH)
        return 1; /* full: the caller writes these and goes on */
    if (buffer_append(cb->x, note->mv_data, note->mv_size) < 0)
        return -ONCE_ERR_NO_MEMORY;
    cb->sizes[cb->n] = size;
    cb->ends[cb->n++] = cb->x->buf.len;
    return 0;
}

/* Every stored checkpoint of a size in [from, x->size], CHECKPOINT_BATCH
 * per snapshot. */
static int export_checkpoints(exporter *x, uint64_t from)
{
    checkpoint_batch cb;
    char path[PATH_CAP];
    size_t i, off;
    uint64_t done = 0;
    int rc;

    memset(&cb, 0, sizeof(cb));
    cb.x = x;
    for (;;) {
        cb.n = 0;
        x->buf.len = 0;
        rc = txn_resume(x);
        if (rc == 0)
            rc = auditlog_checkpoint_each(x->txn, x->log, from, x->size,
                                          collect_checkpoint, &cb, x->err);
        txn_pause(x, "checkpoints", done, 0);
        if (rc < 0)
            return rc;
        for (i = 0, off = 0; i < cb.n; off = cb.ends[i++]) {
            snprintf(path, sizeof(path), "checkpoints/%" PRIu64, cb.sizes[i]);
            rc = export_dir_put_immutable(&x->files, path, x->buf.data + off,
                                          cb.ends[i] - off);
            if (rc < 0)
                return rc;
        }
        done += cb.n;
        if (cb.n < CHECKPOINT_BATCH || cb.sizes[cb.n - 1] == x->size)
            return 0;
        from = cb.sizes[cb.n - 1] + 1;
    }
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
    "  checkpoints/<size>        every checkpoint the broker signed\n"
    "  keys.txt                  department keys and validity times\n"
    "\n"
    "and the evidence, the department-signed envelopes behind the leaves\n"
    "of bundle N, each u32be length then the envelope bytes, either\n"
    "\n"
    "  evidence/<N>[.p/<W>]      in plain: PERSONAL DATA (raw ID numbers,\n"
    "                            disclosed fields), mode 0600; never publish\n"
    "\n"
    "or, sealed to one auditor's key (libsodium sealed boxes),\n"
    "\n"
    "  evidence-sealed/auditor.pub  the auditor's public key\n"
    "  evidence-sealed/<N>[.p/<W>]  each bundle, sealed\n"
    "\n"
    "Everything but the evidence holds hashes, keyed subject hashes and\n"
    "department names, and may be published.\n"
    "\n"
    "Check everything (tree, tiles, every checkpoint, every envelope):\n"
    "\n"
    "  once-audit verify DIR --key broker.pub\n"
    "\n"
    "(Sealed evidence: add --evidence-key AUDITOR.key.)\n"
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

static int export_keys(exporter *x)
{
    int rc;

    x->buf.len = 0;
    rc = buffer_append(x, keys_header, sizeof(keys_header) - 1);
    if (rc == 0)
        rc = txn_resume(x);
    if (rc == 0)
        rc = policy_department_list(x->txn, x->s, append_key_line, x, x->err);
    txn_pause(x, "keys", 1, 1);
    if (rc < 0)
        return rc;
    return export_dir_write(&x->files, "keys.txt", x->buf.data, x->buf.len, 0);
}

/* Refuses to extend a directory that holds another log, a newer tree, or
 * an older one that `start` would leave a gap after. *old_size receives
 * the size of the export found, or UINT64_MAX when there is none. Runs in
 * the snapshot the size was chosen in. */
static int check_existing(exporter *x, uint64_t start, uint64_t *old_size)
{
    char note[CHECKPOINT_MAX_NOTE + 1];
    checkpoint found;
    MDB_val ours;
    uint64_t size;
    ssize_t n;
    int fd;

    *old_size = UINT64_MAX;
    fd = export_dir_open_file(&x->files, "checkpoint");
    if (fd == -ONCE_ERR_NOT_FOUND)
        return 0;
    if (fd < 0)
        return fd;
    n = read(fd, note, sizeof(note));
    close(fd);
    if (n < 0)
        return once_error_set(x->err, ONCE_ERR_IO, "cannot read %s/"
                              "checkpoint: %s", x->dir, strerror(errno));
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

/* One kind of evidence per export, sealed to one key: refuses to add
 * sealed evidence beside plain, plain beside sealed, or evidence sealed to
 * another auditor's key; writes the auditor's key file. */
static int check_evidence_kind(exporter *x)
{
    char line[2 * ONCE_PUBLIC_KEY_BYTES + 2], have[sizeof(line)];
    int plain, sealed, fd;
    ssize_t n = 0;

    plain = export_dir_has_dir(&x->files, EVIDENCE_DIR);
    if (plain < 0)
        return plain;
    sealed = export_dir_has_dir(&x->files, SEALED_DIR);
    if (sealed < 0)
        return sealed;
    if (x->opt->seal_to == NULL) {
        if (sealed)
            return once_error_set(x->err, ONCE_ERR_EXISTS,
                                  "%s holds evidence sealed to an auditor's "
                                  "key (%s): export with --evidence-to that "
                                  "key, or into another directory", x->dir,
                                  SEALED_KEY_FILE);
        return 0;
    }
    if (plain)
        return once_error_set(x->err, ONCE_ERR_EXISTS,
                              "%s holds evidence in plain (%s/): sealed "
                              "evidence goes into another directory", x->dir,
                              EVIDENCE_DIR);
    once_hex_encode(line, x->opt->seal_to, ONCE_PUBLIC_KEY_BYTES);
    line[2 * ONCE_PUBLIC_KEY_BYTES] = '\n';
    fd = export_dir_open_file(&x->files, SEALED_KEY_FILE);
    if (fd == -ONCE_ERR_NOT_FOUND)
        return export_dir_write(&x->files, SEALED_KEY_FILE,
                                (const uint8_t *)line, sizeof(line) - 1, 0);
    if (fd < 0)
        return fd;
    n = read(fd, have, sizeof(have));
    close(fd);
    if (n != (ssize_t)sizeof(line) - 1 ||
        memcmp(have, line, sizeof(line) - 1) != 0)
        return once_error_set(x->err, ONCE_ERR_EXISTS,
                              "%s/%s names another auditor's key: the "
                              "evidence there is sealed to it; export into "
                              "another directory", x->dir, SEALED_KEY_FILE);
    return 0;
}

static int export_all(exporter *x)
{
    const export_options *o = x->opt;
    uint64_t first_bundle, old_size;
    MDB_val note;
    int rc;

    rc = txn_resume(x);
    if (rc == 0)
        rc = auditlog_checkpoint_floor(x->txn, x->log,
                                       o->end ? o->end : UINT64_MAX, &x->size,
                                       &note, x->err);
    if (rc < 0)
        return rc;
    if (note.mv_size > sizeof(x->note))
        return once_error_set(x->err, ONCE_ERR_INTERNAL,
                              "stored checkpoint too long");
    /* Kept across snapshots: note points into this one. */
    memcpy(x->note, note.mv_data, note.mv_size);
    x->note_len = note.mv_size;
    if (o->start > x->size)
        return once_error_set(x->err, ONCE_ERR_INVALID_ARGUMENT,
                              "start %" PRIu64 " is past the exported tree "
                              "size %" PRIu64,
                              o->start, x->size);
    rc = check_existing(x, o->start, &old_size);
    txn_pause(x, "start", 0, 0);
    if (rc == 0)
        rc = check_evidence_kind(x);
    if (rc < 0)
        return rc;
    first_bundle = o->start / TLOG_TILE_WIDTH;
    rc = export_hash_tiles(x);
    if (rc == 0)
        rc = export_bundles(x, first_bundle);
    if (rc == 0)
        rc = export_checkpoints(x, first_bundle * TLOG_TILE_WIDTH);
    if (rc == 0)
        rc = export_keys(x);
    if (rc == 0)
        rc = export_dir_write(&x->files, "README.txt",
                              (const uint8_t *)readme, sizeof(readme) - 1, 0);
    if (rc < 0)
        return rc;
    /* Everything the checkpoint vouches for reaches the disk first. */
    if (syncfs(x->files.fd) < 0)
        return once_error_set(x->err, ONCE_ERR_IO, "cannot sync %s: %s",
                              x->dir, strerror(errno));
    rc = export_dir_write(&x->files, "checkpoint", (const uint8_t *)x->note,
                          x->note_len, 1);
    if (rc < 0)
        return rc;
    if (fsync(x->files.fd) < 0)
        return once_error_set(x->err, ONCE_ERR_IO, "cannot sync %s: %s",
                              x->dir, strerror(errno));
    /* Only now may what the old checkpoint needed go. */
    return old_size == UINT64_MAX ? 0 : remove_old_partials(x, old_size);
}

int export_log(const store *s, const auditlog *log, const char *dir,
               const export_options *opt, once_error *err)
{
    exporter x;
    int rc;

    memset(&x, 0, sizeof(x));
    x.dir = dir;
    x.s = s;
    x.log = log;
    x.opt = opt;
    x.err = err;
    x.buf.wipe = true;
    rc = export_dir_open(&x.files, dir, err);
    if (rc < 0)
        return rc;
    rc = store_begin(s, 1, &x.txn, err);
    if (rc == 0) {
        x.txn_live = 1;
        rc = export_all(&x);
        mdb_txn_abort(x.txn);
    }
    export_dir_close(&x.files);
    /* The buffer last held an evidence bundle: subjects and field values
     * in the clear, which the process's freed memory should not keep
     * (x.buf.wipe). */
    byte_buffer_free(&x.buf);
    byte_buffer_free(&x.sealed);
    return rc;
}
