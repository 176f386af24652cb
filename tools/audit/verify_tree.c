/*
 * verify_tree.c - the tree pass of `once-audit verify`.
 *
 * The tree part is SHA-256 only (a leaf hash and, amortized, one node hash
 * per leaf) and runs per entry bundle of 256 leaves on the thread pool:
 * each task hashes its bundle's leaves and the subtrees inside the bundle,
 * and compares the leaf hashes with the bundle's level-0 hash tile. The
 * main thread only stitches the bundles' subtree roots together, in order
 * (1/256 of the hashing), on a frontier of the complete subtrees so far,
 * and checks the signed checkpoints and the upper hash tiles as the tree
 * reaches their sizes, so memory stays O(n / 256) whatever the log's size.
 *
 * Blame. When a leaf hash from the entries differs from the hash tile,
 * either the entry or the tile was changed. The signed checkpoints decide:
 * the tree is computed both from the entries (a) and from the tiles (b),
 * and the side whose roots the signatures confirm is the intact one. So a
 * changed leaf is reported as that leaf, a changed tile as that tile, and
 * only a change to both (consistent with each other, not with the
 * signatures) is reported through the checkpoints that no longer match.
 *
 * An export made with --from has no entry bundles below its range; their
 * hashes come from tile/0, and the first bundles without entries are only
 * noted (v->pruned_until), not reported. A bundle with neither entries nor
 * a hash tile stops the pass: nothing past it can be recomputed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"
#include "tlog_tiles.h"
#include "util.h"
#include "verifier.h"

/* Intra-bundle nodes: 256 leaf hashes, 128 at level 1, ..., 1 at level 8. */
#define BUNDLE_NODES 511
#define TREE_BATCH 256     /* bundles per thread-pool round */

enum { PART_OK, PART_MISSING, PART_BAD };

/* What one worker finds in one bundle during the tree pass. */
typedef struct tree_bundle {
    unsigned width;
    int entries, tile;              /* PART_* */
    char entries_why[96], tile_why[96];
    int usable;                     /* a[] holds the bundle's nodes */
    int has_b;                      /* b[] differs from a[] */
    uint8_t entries_digest[DIGEST_SHA256_BYTES];
    merkle_hash a[BUNDLE_NODES];    /* from the entries (tile if none) */
    merkle_hash b[BUNDLE_NODES];    /* from the tile, when they differ */
    unsigned nmiss;
    uint16_t miss[TLOG_TILE_WIDTH]; /* positions where they differ */
} tree_bundle;

/* A hash that differs: level-0 (entry vs tile) or upper tile vs tree. */
typedef struct miss {
    unsigned level;
    uint64_t tile;
    unsigned pos;
} miss;

typedef struct miss_list {
    miss *m;
    size_t n, cap;
} miss_list;

typedef struct frontier {
    struct {
        unsigned level;
        uint64_t index;
        merkle_hash h;
    } e[64];
    size_t n;
} frontier;

/* The upper tile (level >= 1) the main thread is comparing against. */
typedef struct upper_tile {
    int state; /* -1 not loaded, PART_* */
    uint64_t index;
    unsigned width;
    uint8_t *data;
} upper_tile;

/* The tree pass's own state, for one run of verify_tree. */
typedef struct tree_pass {
    verifier *v;
    tree_bundle *batch;
    uint64_t batch_first;
    frontier fa, fb;        /* the trees from the entries, from the tiles */
    upper_tile upper[TLOG_MAX_LEVELS];
    miss_list l0, ua, ub;   /* level-0 differences; upper tiles vs a, b */
} tree_pass;

static void miss_add(miss_list *l, unsigned level, uint64_t tile,
                     unsigned pos)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->m = xrealloc(l->m, l->cap * sizeof(*l->m));
    }
    l->m[l->n].level = level;
    l->m[l->n].tile = tile;
    l->m[l->n].pos = pos;
    l->n++;
}

/* Fills nodes[] levels 1..8 from the level-0 hashes of a bundle of width
 * w: only the subtrees the bundle completes. */
static void bundle_nodes(merkle_hash *nodes, unsigned w)
{
    unsigned level, j, off = 0, prev;

    for (level = 1; level <= TLOG_TILE_HEIGHT; level++) {
        prev = off;
        off += TLOG_TILE_WIDTH >> (level - 1);
        for (j = 0; j < (w >> level); j++)
            merkle_node_hash(nodes[prev + 2 * j], nodes[prev + 2 * j + 1],
                             nodes[off + j]);
    }
}

/* Offset of level `level` in a bundle's node array. */
static unsigned node_offset(unsigned level)
{
    return 2 * TLOG_TILE_WIDTH - (2 * TLOG_TILE_WIDTH >> level);
}

static void tree_bundle_task(void *arg, size_t i)
{
    tree_pass *t = arg;
    verifier *v = t->v;
    tree_bundle *r = &t->batch[i];
    uint64_t b = t->batch_first + i;
    size_t offs[TLOG_TILE_WIDTH], lens[TLOG_TILE_WIDTH], tlen = 0, elen = 0;
    char path[TLOG_PATH_MAX];
    uint8_t *tile = NULL, *entries = NULL;
    unsigned j;
    int rc;

    r->width = tlog_tile_width(v->size, 0, b);
    r->usable = r->has_b = 0;
    r->nmiss = 0;
    r->entries = r->tile = PART_OK;
    tile_path(path, "tile/0", b, r->width);
    rc = read_at(v->x.fd, path, &tile, &tlen);
    if (rc == -ENOENT) {
        r->tile = PART_MISSING;
    } else if (rc < 0) {
        r->tile = PART_BAD;
        snprintf(r->tile_why, sizeof(r->tile_why), "%s", strerror(-rc));
    } else if (tlen != (size_t)r->width * MERKLE_HASH_BYTES) {
        r->tile = PART_BAD;
        snprintf(r->tile_why, sizeof(r->tile_why),
                 "holds %zu bytes, not %u hashes", tlen, r->width);
    }
    tile_path(path, "tile/entries", b, r->width);
    rc = read_at(v->x.fd, path, &entries, &elen);
    if (rc == -ENOENT) {
        r->entries = PART_MISSING;
    } else if (rc < 0) {
        r->entries = PART_BAD;
        snprintf(r->entries_why, sizeof(r->entries_why), "%s",
                 strerror(-rc));
    } else if (split_bundle(entries, elen, r->width, TLOG_ENTRY_LENGTH_BYTES,
                            offs, lens, r->entries_why,
                            sizeof(r->entries_why)) < 0) {
        r->entries = PART_BAD;
    }
    if (r->entries == PART_OK) {
        for (j = 0; j < r->width; j++)
            merkle_leaf_hash(entries + offs[j], lens[j], r->a[j]);
        digest_sha256(r->entries_digest, entries, elen);
    } else if (r->tile == PART_OK) {
        memcpy(r->a, tile, tlen);
    } else {
        goto out;
    }
    r->usable = 1;
    if (r->entries == PART_OK && r->tile == PART_OK) {
        for (j = 0; j < r->width; j++)
            if (memcmp(r->a[j], tile + (size_t)j * MERKLE_HASH_BYTES,
                       MERKLE_HASH_BYTES) != 0)
                r->miss[r->nmiss++] = (uint16_t)j;
        if (r->nmiss > 0) {
            r->has_b = 1;
            memcpy(r->b, tile, tlen);
            bundle_nodes(r->b, r->width);
        }
    }
    bundle_nodes(r->a, r->width);
out:
    free(tile);
    free(entries);
}

/* Loads upper tile (level, index) for the main thread. */
static upper_tile *upper_get(tree_pass *t, unsigned level, uint64_t index)
{
    verifier *v = t->v;
    upper_tile *u = &t->upper[level];
    char path[TLOG_PATH_MAX], prefix[16];
    size_t len;
    int rc;

    if (u->state != -1 && u->index == index)
        return u;
    free(u->data);
    u->data = NULL;
    u->index = index;
    u->width = tlog_tile_width(v->size, level, index);
    level_prefix(prefix, sizeof(prefix), level);
    tile_path(path, prefix, index, u->width);
    rc = read_at(v->x.fd, path, &u->data, &len);
    v->tiles_checked++;
    if (rc < 0) {
        u->state = PART_MISSING;
        report_add(&v->found, "%s: %s", path,
                   rc == -ENOENT ? "missing" : strerror(-rc));
    } else if (len != (size_t)u->width * MERKLE_HASH_BYTES) {
        u->state = PART_BAD;
        report_add(&v->found, "%s: holds %zu bytes, not %u hashes", path, len,
                   u->width);
    } else {
        u->state = PART_OK;
    }
    return u;
}

/* A node of level 8L (L >= 1) completed in tree `which`: compare it with
 * its hash in tile level L. */
static void check_upper(tree_pass *t, miss_list *list, unsigned level,
                        uint64_t index, const merkle_hash h)
{
    unsigned tl = level / TLOG_TILE_HEIGHT;
    upper_tile *u;

    if (level % TLOG_TILE_HEIGHT != 0 || tl >= TLOG_MAX_LEVELS)
        return;
    u = upper_get(t, tl, index / TLOG_TILE_WIDTH);
    if (u->state != PART_OK)
        return;
    if (memcmp(u->data + (index % TLOG_TILE_WIDTH) * MERKLE_HASH_BYTES, h,
               MERKLE_HASH_BYTES) != 0)
        miss_add(list, tl, index / TLOG_TILE_WIDTH,
                 (unsigned)(index % TLOG_TILE_WIDTH));
}

/* Pushes a full bundle's root (level 8, index b) onto a frontier, checking
 * every node it completes against the tiles. */
static void frontier_push(tree_pass *t, frontier *f, miss_list *list,
                          uint64_t b, const merkle_hash root)
{
    merkle_hash h;
    unsigned level = TLOG_TILE_HEIGHT;
    uint64_t index = b;

    memcpy(h, root, MERKLE_HASH_BYTES);
    check_upper(t, list, level, index, h);
    while (f->n > 0 && f->e[f->n - 1].level == level) {
        merkle_node_hash(f->e[f->n - 1].h, h, h);
        f->n--;
        level++;
        index >>= 1;
        check_upper(t, list, level, index, h);
    }
    f->e[f->n].level = level;
    f->e[f->n].index = index;
    memcpy(f->e[f->n].h, h, MERKLE_HASH_BYTES);
    f->n++;
}

/* Root of the tree of (leaves the frontier covers) + `low` leaves of the
 * next bundle, whose nodes are `nodes` (NULL when low is 0). */
static void root_at(const frontier *f, const merkle_hash *nodes, unsigned low,
                    merkle_hash out)
{
    merkle_hash parts[64 + TLOG_TILE_HEIGHT];
    size_t n = 0, i;
    unsigned prefix = 0;
    int level;

    for (i = 0; i < f->n; i++)
        memcpy(parts[n++], f->e[i].h, MERKLE_HASH_BYTES);
    for (level = TLOG_TILE_HEIGHT - 1; level >= 0 && nodes != NULL;
         level--) {
        if (!(low & (1u << level)))
            continue;
        memcpy(parts[n++], nodes[node_offset((unsigned)level) +
                                 (prefix >> level)],
               MERKLE_HASH_BYTES);
        prefix += 1u << level;
    }
    if (n == 0) {
        merkle_empty_root(out);
        return;
    }
    memcpy(out, parts[n - 1], MERKLE_HASH_BYTES);
    for (i = n - 1; i-- > 0;)
        merkle_node_hash(parts[i], out, out);
}

/* Compares the valid checkpoints of exactly `size` leaves with both trees.
 * *next walks the sorted checkpoint list. */
static void check_checkpoints_at(tree_pass *t, size_t *next, uint64_t size,
                                 const tree_bundle *r, unsigned low)
{
    verifier *v = t->v;
    merkle_hash ra, rb;

    while (*next < v->ncps && v->cps[*next].valid &&
           v->cps[*next].cp.size == size) {
        cp_item *c = &v->cps[(*next)++];

        root_at(&t->fa, r ? r->a : NULL, low, ra);
        root_at(&t->fb, r ? (r->has_b ? r->b : r->a) : NULL, low, rb);
        c->checked = 1;
        c->match_a = memcmp(ra, c->cp.root, MERKLE_HASH_BYTES) == 0;
        c->match_b = memcmp(rb, c->cp.root, MERKLE_HASH_BYTES) == 0;
    }
}

/* Merges one bundle's result into the frontiers. 0, or -1 when the tree
 * cannot go on. */
static int tree_merge(tree_pass *t, uint64_t b, const tree_bundle *r,
                      size_t *next_cp)
{
    verifier *v = t->v;
    uint64_t base = b * TLOG_TILE_WIDTH;
    char path[TLOG_PATH_MAX];
    unsigned j;

    tile_path(path, "tile/entries", b, r->width);
    if (r->entries == PART_MISSING && base + r->width <= v->from &&
        v->pruned_until == base) {
        v->pruned_until = base + r->width;
    } else if (r->entries == PART_MISSING) {
        report_add(&v->found, "%s: missing: leaves [%" PRIu64 ", %" PRIu64
                   ") are not in the export", path, base, base + r->width);
    } else if (r->entries == PART_BAD) {
        report_add(&v->found, "%s: malformed (%s): leaves [%" PRIu64
                   ", %" PRIu64 ") cannot be checked", path, r->entries_why,
                   base, base + r->width);
    } else {
        v->entries_ok[b] = 1;
        memcpy(v->entries_digest[b], r->entries_digest, DIGEST_SHA256_BYTES);
    }
    tile_path(path, "tile/0", b, r->width);
    v->tiles_checked++;
    if (r->tile == PART_MISSING)
        report_add(&v->found, "%s: missing", path);
    else if (r->tile == PART_BAD)
        report_add(&v->found, "%s: %s", path, r->tile_why);
    if (!r->usable) {
        report_add(&v->found, "leaves [%" PRIu64 ", %" PRIu64 ") have neither "
                   "entries nor a hash tile: the tree cannot be recomputed "
                   "past leaf %" PRIu64, base, base + r->width, base);
        return -1;
    }
    for (j = 0; j < r->nmiss; j++)
        miss_add(&t->l0, 0, b, r->miss[j]);
    check_checkpoints_at(t, next_cp, base, NULL, 0);
    /* Sizes inside this bundle; a full bundle's end is the next base. */
    for (j = 1; j <= r->width && j < TLOG_TILE_WIDTH; j++)
        check_checkpoints_at(t, next_cp, base + j, r, j);
    if (r->width == TLOG_TILE_WIDTH) {
        frontier_push(t, &t->fa, &t->ua, b,
                      r->a[node_offset(TLOG_TILE_HEIGHT)]);
        frontier_push(t, &t->fb, &t->ub, b,
                      (r->has_b ? r->b : r->a)[node_offset(TLOG_TILE_HEIGHT)]);
    }
    return 0;
}

/* The tree pass: bundles on the pool, merged in order on this thread. */
static int tree_run(tree_pass *t)
{
    verifier *v = t->v;
    uint64_t count = tlog_tile_count(v->size, 0), b, n;
    size_t next_cp = 0;
    double last = now_seconds();
    int broken = 0;

    t->batch = xcalloc(TREE_BATCH, sizeof(*t->batch));
    v->entries_ok = xcalloc((size_t)count + 1, 1);
    v->entries_digest = xcalloc((size_t)count + 1,
                                sizeof(*v->entries_digest));
    for (b = 0; b < count && !broken; b += n) {
        uint64_t i;

        n = count - b < TREE_BATCH ? count - b : TREE_BATCH;
        t->batch_first = b;
        pool_run(&v->pool, tree_bundle_task, t, (size_t)n);
        for (i = 0; i < n && !broken; i++)
            broken = tree_merge(t, b + i, &t->batch[i], &next_cp) < 0;
        v->problems += report_flush(&v->found);
        progress("tree", (b + n) * TLOG_TILE_WIDTH < v->size
                             ? (b + n) * TLOG_TILE_WIDTH
                             : v->size,
                 v->size, &last);
    }
    /* A last bundle that is full ends at a size the loop has not checked;
     * a partial one ended at v->size, checked above. */
    if (!broken && v->size % TLOG_TILE_WIDTH == 0)
        check_checkpoints_at(t, &next_cp, count * TLOG_TILE_WIDTH, NULL, 0);
    free(t->batch);
    t->batch = NULL;
    return broken ? -1 : 0;
}

static void print_tile_misses(tree_pass *t, const miss_list *l,
                              const char *verdict)
{
    verifier *v = t->v;
    char path[TLOG_PATH_MAX], prefix[16];
    size_t i;

    for (i = 0; i < l->n; i++) {
        const miss *m = &l->m[i];
        uint64_t span = (uint64_t)1 << (TLOG_TILE_HEIGHT * m->level);
        uint64_t first = (m->tile * TLOG_TILE_WIDTH + m->pos) * span;

        level_prefix(prefix, sizeof(prefix), m->level);
        tile_path(path, prefix, m->tile,
                  tlog_tile_width(v->size, m->level, m->tile));
        report_add(&v->found, "%s: hash %u (leaves [%" PRIu64 ", %" PRIu64
                   ")) %s", path, m->pos, first, first + span, verdict);
    }
}

/* Decides from the checkpoints whether differing level-0 hashes mean
 * changed entries or changed tiles, and reports accordingly. */
static void report_tree(tree_pass *t)
{
    verifier *v = t->v;
    char path[TLOG_PATH_MAX];
    int ok_a = 1, ok_b = 1;
    uint64_t last_good = 0;
    size_t i;

    for (i = 0; i < v->ncps; i++) {
        if (!v->cps[i].valid || !v->cps[i].checked)
            continue;
        ok_a &= v->cps[i].match_a;
        ok_b &= v->cps[i].match_b;
    }
    if (t->l0.n > 0 && ok_a) {
        print_tile_misses(t, &t->l0, "is wrong: the entries hash to the "
                          "roots the checkpoints sign");
    } else if (t->l0.n > 0 && ok_b) {
        for (i = 0; i < t->l0.n; i++) {
            const miss *m = &t->l0.m[i];

            tile_path(path, "tile/0", m->tile,
                      tlog_tile_width(v->size, 0, m->tile));
            report_add(&v->found, "leaf %" PRIu64 ": entry was changed: it "
                       "does not hash to %s hash %u, which the signed "
                       "checkpoints confirm",
                       m->tile * TLOG_TILE_WIDTH + m->pos, path, m->pos);
        }
        print_tile_misses(t, &t->ub, "differs from the signed tree");
        return;
    } else {
        for (i = 0; i < t->l0.n; i++) {
            const miss *m = &t->l0.m[i];

            tile_path(path, "tile/0", m->tile,
                      tlog_tile_width(v->size, 0, m->tile));
            report_add(&v->found, "leaf %" PRIu64 ": entry does not hash to "
                       "%s hash %u",
                       m->tile * TLOG_TILE_WIDTH + m->pos, path, m->pos);
        }
    }
    print_tile_misses(t, &t->ua, "differs from the tree recomputed from the "
                      "entries");
    for (i = 0; i < v->ncps; i++) {
        cp_item *c = &v->cps[i];

        if (!c->valid || !c->checked)
            continue;
        if (c->match_a) {
            last_good = c->cp.size;
            continue;
        }
        report_add(&v->found, "checkpoint %" PRIu64 " (%s): its signed root "
                   "is not the root of the leaves in the export; leaves in "
                   "[%" PRIu64 ", %" PRIu64 ") were changed or the broker "
                   "signed a different history", c->cp.size, c->label,
                   last_good, c->cp.size);
    }
}

int verify_tree(verifier *v)
{
    tree_pass *t = xcalloc(1, sizeof(*t));
    size_t i;
    int rc;

    t->v = v;
    for (i = 0; i < TLOG_MAX_LEVELS; i++)
        t->upper[i].state = -1;
    rc = tree_run(t);
    report_tree(t);
    for (i = 0; i < TLOG_MAX_LEVELS; i++)
        free(t->upper[i].data);
    free(t->l0.m);
    free(t->ua.m);
    free(t->ub.m);
    free(t);
    return rc;
}
