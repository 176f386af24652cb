/*
 * verify_state.c - what an auditor keeps between runs of `once-audit
 * verify` (--save, --since).
 *
 * An auditor verifies the same log again and again as it grows. The state
 * is a directory holding the checkpoint a clean verify ended at and the
 * keys.txt it checked signatures with. The file `verified` marks it as
 * written by --save, so that an export directory, which has the other two
 * files, is not taken for one by mistake.
 *
 * With --since STATE, the kept checkpoint must verify and is checked
 * against the recomputed tree like every other one (verify_tree.c); when
 * its root is the root of the entry bundles at its size, the envelopes of
 * those leaves are the ones the earlier run checked, pinned by the digests
 * in the leaves, and their signatures by keys that have not changed are
 * not checked again (verify_evidence.c). Everything else still is: the
 * tree, every checkpoint, every leaf against its envelope. So a later run
 * costs a signature check per new exchange, not per exchange ever logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_io.h"
#include "util.h"
#include "verifier.h"

/* Marks a directory as a state written by --save. */
#define STATE_MARK "verified"
/* The label of the checkpoint a --since state holds, in v->cps. */
#define KEPT_LABEL "--since checkpoint"

/* Adds the checkpoint of the state directory (--since) to the ones checked
 * against the recomputed tree, and loads its keys. A state whose
 * checkpoint does not verify, or is of a larger tree than the export, is a
 * problem, and then every evidence envelope is checked. */
void load_state(verifier *v, const char *path)
{
    cp_item *c;
    once_error err;
    struct stat st;
    int fd, rc;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fstatat(fd, STATE_MARK, &st, 0) < 0) {
        report_add(&v->found, "--since %s: not a state directory written "
                   "by once-audit verify --save (%s)", path,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    v->cps = xrealloc(v->cps, (v->ncps + 1) * sizeof(*v->cps));
    c = &v->cps[v->ncps];
    memset(c, 0, sizeof(*c));
    snprintf(c->label, sizeof(c->label), KEPT_LABEL);
    c->named_size = UINT64_MAX;
    rc = read_at(fd, "checkpoint", &c->text, &c->len);
    if (rc < 0) {
        report_add(&v->found, "%s %s/checkpoint: cannot read: %s",
                   KEPT_LABEL, path, strerror(-rc));
        goto out;
    }
    if (checkpoint_verify((const char *)c->text, c->len, v->origin,
                          v->broker_pk, &c->cp, &err) < 0) {
        report_add(&v->found, "%s %s: %s", KEPT_LABEL, path, err.message);
        free(c->text);
        goto out;
    }
    if (c->cp.size > v->size) {
        report_add(&v->found, "%s %s: of a tree of %" PRIu64 " leaves, "
                   "newer than this export's %" PRIu64, KEPT_LABEL, path,
                   c->cp.size, v->size);
        free(c->text);
        goto out;
    }
    c->valid = 1;
    v->ncps++;
    checkpoints_sort(v);
    keys_load(fd, &v->kept_keys, &v->found);
out:
    close(fd);
}

/* --save: after a clean run whose evidence covered every leaf, the state
 * a later --since starts from. STATE must be the auditor's and writable by
 * nobody else, and nothing in it is written through a link (file_io.c). */
int save_state(const verifier *v, const char *path, once_error *err)
{
    char mark[512];
    uint8_t *keys = NULL;
    size_t keys_len = 0;
    int fd, rc;

    fd = file_dir_open(AT_FDCWD, path, 1, 0755, 0, NULL, err);
    if (fd < 0)
        return fd;
    /* The mark goes first and comes back last, so that a save that fails
     * halfway never leaves an older mark over a mix of two states. */
    if (unlinkat(fd, STATE_MARK, 0) < 0 && errno != ENOENT) {
        rc = once_error_set(err, ONCE_ERR_IO, "cannot remove %s/%s: %s",
                            path, STATE_MARK, strerror(errno));
        close(fd);
        return rc;
    }
    rc = read_at(v->x.fd, "keys.txt", &keys, &keys_len);
    if (rc < 0)
        rc = once_error_set(err, ONCE_ERR_IO, "cannot read %s/keys.txt: %s",
                            v->x.path, strerror(-rc));
    if (rc == 0)
        rc = file_write_atomic(fd, "keys.txt", keys, keys_len, 0644, 1, path,
                               err);
    if (rc == 0)
        rc = file_write_atomic(fd, "checkpoint", v->x.note, v->x.note_len,
                               0644, 1, path, err);
    snprintf(mark, sizeof(mark), "once-audit verify passed: %s, tree size %"
             PRIu64 ", origin %s\n", v->x.path, v->size, v->origin);
    if (rc == 0)
        rc = file_write_atomic(fd, STATE_MARK, mark, strlen(mark), 0644, 1,
                               path, err);
    free(keys);
    close(fd);
    return rc;
}

/* The size of the kept checkpoint when the tree pass found its root to be
 * the root of the entry bundles at its size, else 0. */
uint64_t kept_size_confirmed(const verifier *v)
{
    size_t i;

    for (i = 0; i < v->ncps; i++)
        if (strcmp(v->cps[i].label, KEPT_LABEL) == 0)
            return v->cps[i].valid && v->cps[i].checked &&
                           v->cps[i].match_a
                       ? v->cps[i].cp.size
                       : 0;
    return 0;
}
