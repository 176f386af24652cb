/*
 * verify_checkpoints.c - the signed checkpoints of an export, for
 * `once-audit verify`.
 *
 * An export holds the checkpoint it was made at (DIR/checkpoint) and every
 * checkpoint the broker signed in its range (DIR/checkpoints/<size>). Each
 * must carry the broker's signature under the log's origin, and each is
 * then compared with the recomputed tree at its size (verify_tree.c),
 * which also proves every one consistent with the next: a broker that
 * signed two histories is caught by whichever one the entries do not
 * match.
 *
 * The tree size to verify to is DIR/checkpoint's, or, when that one does
 * not verify, the newest checkpoint that does, so that one damaged file
 * does not stop the audit. A checkpoint of a larger tree than that cannot
 * be checked and is a problem. A broker run with checkpoint_interval_ms = 0
 * signs one per group commit: tens of thousands of small files, which are
 * read and verified on the thread pool.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "verifier.h"

static int cp_cmp(const void *a, const void *b)
{
    const cp_item *x = a, *y = b;

    if (x->valid != y->valid)
        return x->valid ? -1 : 1;
    if (x->cp.size != y->cp.size)
        return x->cp.size < y->cp.size ? -1 : 1;
    return strcmp(x->label, y->label);
}

void checkpoints_sort(verifier *v)
{
    qsort(v->cps, v->ncps, sizeof(*v->cps), cp_cmp);
}

/* Reads and verifies checkpoint i, on the pool. */
static void cp_verify_task(void *arg, size_t i)
{
    verifier *v = arg;
    cp_item *c = &v->cps[i];
    once_error err;
    int rc;

    /* The files are read here, on the pool: a broker run with
     * checkpoint_interval_ms = 0 signs one per group commit, tens of
     * thousands of small files. */
    if (c->text == NULL) {
        char path[sizeof(c->label)];

        snprintf(path, sizeof(path), "checkpoints/%s", c->file_name);
        if ((rc = read_at(v->x.fd, path, &c->text, &c->len)) < 0) {
            snprintf(c->why, sizeof(c->why), "cannot read: %s",
                     strerror(-rc));
            return;
        }
    }
    if (checkpoint_verify((const char *)c->text, c->len, v->origin,
                          v->broker_pk, &c->cp, &err) < 0) {
        snprintf(c->why, sizeof(c->why), "signature or format does not "
                 "verify: %s", err.message);
        return;
    }
    if (c->named_size != UINT64_MAX && c->named_size != c->cp.size) {
        snprintf(c->why, sizeof(c->why),
                 "signature or format does not verify: holds a checkpoint "
                 "of tree size %" PRIu64, c->cp.size);
        return;
    }
    c->valid = 1;
}

int load_checkpoints(verifier *v)
{
    size_t cap = 16, i;
    struct dirent *de;
    DIR *d;
    int fd;

    v->cps = xcalloc(cap, sizeof(*v->cps));
    strcpy(v->cps[0].label, "checkpoint");
    v->cps[0].named_size = UINT64_MAX;
    v->cps[0].text = xmalloc(v->x.note_len + 1);
    memcpy(v->cps[0].text, v->x.note, v->x.note_len + 1);
    v->cps[0].len = v->x.note_len;
    v->ncps = 1;
    fd = openat(v->x.fd, "checkpoints", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL && fd >= 0)
        close(fd);
    while (d != NULL && (de = readdir(d)) != NULL) {
        uint64_t size;
        cp_item *c;

        /* Skip dot files and the temporary files of a crashed export. */
        if (de->d_name[0] == '.' ||
            (strlen(de->d_name) > 4 &&
             strcmp(de->d_name + strlen(de->d_name) - 4, ".tmp") == 0))
            continue;
        if (parse_u64(de->d_name, &size) < 0) {
            report_add(&v->found, "checkpoints/%s: not named by a tree size",
                       de->d_name);
            continue;
        }
        if (v->ncps == cap) {
            cap *= 2;
            v->cps = xrealloc(v->cps, cap * sizeof(*v->cps));
        }
        c = &v->cps[v->ncps++];
        memset(c, 0, sizeof(*c));
        snprintf(c->label, sizeof(c->label), "checkpoints/%" PRIu64, size);
        snprintf(c->file_name, sizeof(c->file_name), "%s", de->d_name);
        c->named_size = size;
    }
    if (d != NULL)
        closedir(d);
    pool_run(&v->pool, cp_verify_task, v, v->ncps);
    for (i = 0; i < v->ncps; i++)
        if (!v->cps[i].valid)
            report_add(&v->found, "%s: %s", v->cps[i].label, v->cps[i].why);
    /* The checkpoint file sets the size; if it does not verify, the newest
     * checkpoint that does. */
    if (v->cps[0].valid) {
        v->size = v->cps[0].cp.size;
    } else {
        int found = 0;

        for (i = 1; i < v->ncps; i++)
            if (v->cps[i].valid && (!found || v->cps[i].cp.size > v->size)) {
                v->size = v->cps[i].cp.size;
                found = 1;
            }
        if (!found)
            return -1;
    }
    checkpoints_sort(v);
    for (i = 0; i < v->ncps; i++)
        if (v->cps[i].valid && v->cps[i].cp.size > v->size)
            report_add(&v->found, "%s: tree size %" PRIu64 " is past the "
                       "export's %" PRIu64 " leaves; it cannot be checked",
                       v->cps[i].label, v->cps[i].cp.size, v->size);
    return 0;
}
