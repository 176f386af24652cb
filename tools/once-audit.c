/*
 * once-audit - the auditor's tool for an exported once exchange log.
 *
 * It never talks to the broker. Everything it concludes follows from the
 * export directory (docs/AUDIT.md, broker/export.c) and the broker's public
 * key, which the auditor obtained out of band: if the broker, its operator
 * or anyone who handled the export changed, dropped or invented an
 * exchange, some hash, signature or digest here stops matching, and the
 * tool says which leaf, tile or checkpoint it is.
 *
 *   verify       recomputes every leaf hash from the entry bundles and the
 *                whole tree, compares every hash tile, checks every signed
 *                checkpoint (signature, and root against the recomputed
 *                tree at its size, which also proves each consistent with
 *                the next), and checks each leaf against its evidence: the
 *                department's signature on the envelope it sent, and the
 *                envelope's content against what the leaf records.
 *   prove        writes a C2SP tlog-proof for one leaf;
 *   check-proof  checks one, offline.
 *   consistency  shows that the log only grew since a checkpoint kept
 *                earlier.
 *   subject      the citizen's access report: every exchange about one
 *                subject, found through the keyed subject hash.
 *
 * Speed. A large deployment logs millions of exchanges, and an audit that
 * takes a day is an audit nobody runs. The tree part is SHA-256 only (a
 * leaf hash and, amortized, one node hash per leaf) and runs per entry
 * bundle of 256 leaves on a thread pool; the main thread only stitches the
 * bundles' subtree roots together (1/256 of the hashing) and checks
 * checkpoints and upper tiles as it goes, so memory stays O(n / 256). The
 * evidence part is one Ed25519 verification per leaf (~50 us), far slower
 * than the tree, so it is a separate pass on the same pool and its rate is
 * reported separately. An auditor verifies the same log again and again
 * as it grows; with --since a checkpoint kept from an earlier run, whose
 * root the tree pass confirms, the old leaves' envelopes are only checked
 * against the digests in those (unchanged) leaves, so a later run costs a
 * signature check per new exchange, not per exchange ever logged.
 *
 * Blame. When a leaf hash from the entries differs from the hash tile,
 * either the entry or the tile was changed. The signed checkpoints decide:
 * the tree is computed both from the entries and from the tiles, and the
 * side whose roots the signatures confirm is the intact one. So a changed
 * leaf is reported as that leaf, a changed tile as that tile, and only a
 * change to both (consistent with each other, not with the signatures) is
 * reported through the checkpoints that no longer match.
 *
 * Exit status: 0 when everything checked out, 1 on any problem found (all
 * are reported, not just the first), 2 on a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_hash.h"
#include "audit_sealed.h"
#include "audit_text.h"
#include "digest.h"
#include "checkpoint.h"
#include "envelope.h"
#include "evidence.h"
#include "evidence_seal.h"
#include "export_keys.h"
#include "file_io.h"
#include "merkle.h"
#include "merkle_nodes.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "text_fields.h"
#include "tlog_proof.h"
#include "tlog_tiles.h"

#define EXIT_CLEAN 0
#define EXIT_PROBLEMS 1
#define EXIT_USAGE 2

/* Intra-bundle nodes: 256 leaf hashes, 128 at level 1, ..., 1 at level 8. */
#define BUNDLE_NODES 511
#define TREE_BATCH 256     /* bundles per thread-pool round, tree pass */
#define EVIDENCE_BATCH 32  /* bundles per round, evidence pass */
/* No file of an export is larger than a full evidence bundle of the
 * largest envelopes, sealed; a larger one is refused before it is read,
 * not allowed to exhaust memory. */
#define MAX_INPUT_FILE ((uint64_t)TLOG_TILE_WIDTH * \
                        (TLOG_EVIDENCE_LENGTH_BYTES + ONCE_MAX_MESSAGE) + \
                        EVIDENCE_SEAL_OVERHEAD)

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "once-audit: out of memory\n");
        exit(EXIT_PROBLEMS);
    }
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        fprintf(stderr, "once-audit: out of memory\n");
        exit(EXIT_PROBLEMS);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "once-audit: out of memory\n");
        exit(EXIT_PROBLEMS);
    }
    return p;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a whole file, relative to dirfd, NUL-terminated for the callers
 * that print it. 0, or -errno (-ENOENT when it does not exist, -EFBIG when
 * it is over MAX_INPUT_FILE). */
static int read_at(int dirfd, const char *path, uint8_t **data, size_t *len)
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

/* A command-line argument or file name as a u64 in plain decimal. */
static int parse_u64(const char *s, uint64_t *out)
{
    return text_parse_u64(s, strlen(s), out);
}

static void format_time(uint64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    gmtime_r(&t, &tm);
    n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case ONCE__KIND__KIND_PUBLISH: return "publish";
    case ONCE__KIND__KIND_REVOKE: return "revoke";
    case ONCE__KIND__KIND_REQUEST: return "request";
    default: return "other";
    }
}

static int load_public_key(const char *path, uint8_t pk[32])
{
    once_error err;

    if (once_public_key_load(pk, path, &err) < 0) {
        fprintf(stderr, "once-audit: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Problem reports: one line each, collected per task and printed in order.
 * ---------------------------------------------------------------------- */

typedef struct report {
    char **lines;
    size_t n, cap;
} report;

__attribute__((format(printf, 2, 3))) static void
report_add(report *r, const char *fmt, ...)
{
    va_list ap;
    char *line;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    line = xmalloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(line, (size_t)len + 1, fmt, ap);
    va_end(ap);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->lines = xrealloc(r->lines, r->cap * sizeof(*r->lines));
    }
    r->lines[r->n++] = line;
}

/* Prints and empties r; returns how many problems it held. The lines
 * carry names, types and file names from the export: escaped, so that
 * none can end its line early or forge another (audit_text.c). */
static size_t report_flush(report *r)
{
    size_t i, n = r->n;

    for (i = 0; i < r->n; i++) {
        fputs("FAIL ", stdout);
        audit_put_escaped(stdout, r->lines[i]);
        fputc('\n', stdout);
        free(r->lines[i]);
    }
    r->n = 0;
    return n;
}

static void report_free(report *r)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------------
 * A fixed thread pool that runs fn(arg, i) for i in [0, count); the caller
 * works along and returns when all are done.
 * ---------------------------------------------------------------------- */

typedef struct pool {
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    void (*fn)(void *arg, size_t i);
    void *arg;
    size_t count, next, finished;
    uint64_t round;
    int stop;
} pool;

/* Runs tasks of the current round until none is left. Called locked. */
static void pool_drain(pool *p)
{
    while (p->next < p->count) {
        size_t i = p->next++;

        pthread_mutex_unlock(&p->mu);
        p->fn(p->arg, i);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->count)
            pthread_cond_broadcast(&p->done);
    }
}

static void *pool_worker(void *arg)
{
    pool *p = arg;
    uint64_t seen = 0;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->round == seen)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop)
            break;
        seen = p->round;
        pool_drain(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int pool_start(pool *p, int threads)
{
    int i;

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = xcalloc((size_t)threads, sizeof(pthread_t));
    /* The calling thread is one of the `threads` workers. */
    for (i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_worker, p) != 0)
            return -1;
        p->nthreads++;
    }
    return 0;
}

static void pool_run(pool *p, void (*fn)(void *, size_t), void *arg,
                     size_t count)
{
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->count = count;
    p->next = 0;
    p->finished = 0;
    p->round++;
    pthread_cond_broadcast(&p->work);
    pool_drain(p);
    while (p->finished < p->count)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void pool_stop(pool *p)
{
    int i;

    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
}

/* ------------------------------------------------------------------------
 * The export directory
 * ---------------------------------------------------------------------- */

typedef struct export_dir {
    const char *path;
    int fd;
    uint8_t *note;   /* DIR/checkpoint, NUL-terminated */
    size_t note_len;
} export_dir;

static int export_open(export_dir *x, const char *path)
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

static void export_close(export_dir *x)
{
    free(x->note);
    close(x->fd);
}

static void tile_path(char *out, const char *prefix, uint64_t index,
                      unsigned width)
{
    /* Paths of indexes below 2^64 always fit TLOG_PATH_MAX. */
    if (tlog_tile_path(out, TLOG_PATH_MAX, prefix, index, width) < 0)
        snprintf(out, TLOG_PATH_MAX, "%s/?", prefix);
}

static void level_prefix(char *out, size_t cap, unsigned level)
{
    snprintf(out, cap, "tile/%u", level);
}

/* tlog_bundle_split with the reason in why, which the callers keep per
 * bundle in less room than a once_error (its reasons are short). */
static int split_bundle(const uint8_t *data, size_t len, unsigned count,
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
static int read_entry(int dirfd, uint64_t size, uint64_t index, uint8_t **leaf,
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

/* merkle_node_fn over the hash tiles of an export: a node of level h is
 * the tile hash at level h / 8 when h is a multiple of 8, otherwise the
 * root of the 2^(h % 8) tile hashes it spans. One tile per level cached. */
typedef struct tile_reader {
    int dirfd;
    uint64_t size;
    struct {
        int loaded;
        uint64_t index;
        uint8_t *data;
        unsigned width;
    } cache[TLOG_MAX_LEVELS];
    char why[256];
} tile_reader;

static int tile_node(void *ctx, unsigned h, uint64_t k, merkle_hash out)
{
    tile_reader *r = ctx;
    unsigned level = h / TLOG_TILE_HEIGHT, span = 1u << (h % TLOG_TILE_HEIGHT);
    uint64_t first = k << (h % TLOG_TILE_HEIGHT);
    uint64_t t = first / TLOG_TILE_WIDTH;
    unsigned pos = (unsigned)(first % TLOG_TILE_WIDTH);
    char path[TLOG_PATH_MAX], prefix[16];
    size_t len;
    int rc;

    if (level >= TLOG_MAX_LEVELS)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (!r->cache[level].loaded || r->cache[level].index != t) {
        free(r->cache[level].data);
        r->cache[level].loaded = 0;
        r->cache[level].data = NULL;
        r->cache[level].width = tlog_tile_width(r->size, level, t);
        level_prefix(prefix, sizeof(prefix), level);
        tile_path(path, prefix, t, r->cache[level].width);
        rc = read_at(r->dirfd, path, &r->cache[level].data, &len);
        if (rc < 0) {
            snprintf(r->why, sizeof(r->why), "cannot read %s: %s", path,
                     strerror(-rc));
            return -ONCE_ERR_IO;
        }
        if (len != (size_t)r->cache[level].width * MERKLE_HASH_BYTES) {
            snprintf(r->why, sizeof(r->why), "%s holds %zu bytes, not %u "
                     "hashes", path, len, r->cache[level].width);
            return -ONCE_ERR_MALFORMED;
        }
        r->cache[level].loaded = 1;
        r->cache[level].index = t;
    }
    if (pos + span > r->cache[level].width) {
        snprintf(r->why, sizeof(r->why), "tile level %u index %" PRIu64
                 " is too narrow", level, t);
        return -ONCE_ERR_MALFORMED;
    }
    merkle_root((const merkle_hash *)r->cache[level].data + pos, span, out);
    return 0;
}

static void tile_reader_free(tile_reader *r)
{
    unsigned i;

    for (i = 0; i < TLOG_MAX_LEVELS; i++)
        free(r->cache[i].data);
}

/* ------------------------------------------------------------------------
 * keys.txt: department keys and their validity
 * ---------------------------------------------------------------------- */

typedef struct dept_key {
    char id[ONCE_MAX_NAME + 1];
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES];
    uint64_t from, until; /* until 0: still valid */
} dept_key;

typedef struct keyring {
    dept_key *keys;
    size_t n;
} keyring;

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const dept_key *)a)->id, ((const dept_key *)b)->id);
}

typedef struct keys_loading {
    keyring *keys;
    size_t cap;
    report *problems;
} keys_loading;

static int keys_add(void *arg, size_t line_number, const export_key *key,
                    const once_error *problem)
{
    keys_loading *l = arg;
    dept_key *dk;

    if (problem != NULL) {
        report_add(l->problems, "keys.txt line %zu: %s", line_number,
                   problem->message);
        return 0;
    }
    if (l->keys->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->keys->keys = xrealloc(l->keys->keys,
                                 l->cap * sizeof(*l->keys->keys));
    }
    dk = &l->keys->keys[l->keys->n++];
    memcpy(dk->id, key->id, sizeof(dk->id));
    memcpy(dk->pk, key->public_key, sizeof(dk->pk));
    dk->from = key->valid_from;
    dk->until = key->valid_until;
    return 0;
}

/* Loads DIR/keys.txt; malformed lines are problems. */
static void keys_load(int dirfd, keyring *k, report *problems)
{
    keys_loading loading = {k, 0, problems};
    uint8_t *data;
    size_t len;
    int rc = read_at(dirfd, "keys.txt", &data, &len);

    memset(k, 0, sizeof(*k));
    if (rc < 0) {
        report_add(problems, "keys.txt: cannot read: %s", strerror(-rc));
        return;
    }
    export_keys_parse((const char *)data, len, keys_add, &loading);
    free(data);
    if (k->n > 0)
        qsort(k->keys, k->n, sizeof(*k->keys), key_cmp);
}

/* The keys of department id: [*first, *first + *count). */
static void keys_of(const keyring *k, const char *id, size_t *first,
                    size_t *count)
{
    size_t lo = 0, hi = k->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(k->keys[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    for (hi = lo; hi < k->n && strcmp(k->keys[hi].id, id) == 0; hi++)
        ;
    *count = hi - lo;
}

/* Whether keyring k holds this very key for department id. */
static bool keys_hold(const keyring *k, const char *id,
                      const uint8_t pk[ONCE_PUBLIC_KEY_BYTES])
{
    size_t first, count, i;

    keys_of(k, id, &first, &count);
    for (i = first; i < first + count; i++)
        if (memcmp(k->keys[i].pk, pk, ONCE_PUBLIC_KEY_BYTES) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------
 * verify
 * ---------------------------------------------------------------------- */

typedef struct cp_item {
    char label[48];       /* "checkpoint" or "checkpoints/<size>" */
    char file_name[24];   /* in checkpoints/: a decimal u64 (20 digits) */
    uint64_t named_size;  /* from the file name; UINT64_MAX for checkpoint */
    uint8_t *text;
    size_t len;
    int valid;            /* signature verified and note parsed */
    checkpoint cp;
    char why[ONCE_ERROR_MESSAGE_MAX + 64];
    int checked, match_a, match_b;
} cp_item;

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

typedef struct verifier {
    export_dir x;
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    char origin[CHECKPOINT_MAX_ORIGIN + 1];
    int have_audit_key;
    uint8_t audit_key[AUDIT_KEY_BYTES];
    int threads;
    pool pool;
    uint64_t size;          /* the tree size everything is checked to */
    uint64_t from;          /* leaves below may lack entries (--from) */
    /* --since: the signatures of leaves below evidence_from were checked
     * by an earlier run with the keys in kept_keys. */
    uint64_t evidence_from;
    keyring kept_keys;
    size_t problems;        /* printed so far */
    report found;           /* main thread's, printed at stage ends */

    cp_item *cps;
    size_t ncps;

    /* tree pass */
    tree_bundle *batch;
    uint64_t batch_first;
    uint8_t *entries_ok;    /* per bundle: entries present and parsed */
    /* per bundle: SHA-256 of the entries the tree pass hashed, so that the
     * evidence pass checks the very same leaves */
    uint8_t (*entries_digest)[DIGEST_SHA256_BYTES];
    uint64_t pruned_until;  /* leaves before this have no entry bundles */
    frontier fa, fb;
    upper_tile upper[TLOG_MAX_LEVELS];
    miss_list l0, ua, ub;
    uint64_t tiles_checked;

    /* evidence pass */
    keyring keys;
    audit_evidence evidence; /* plain or sealed, and the key to open it */
} verifier;

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

static int cp_cmp(const void *a, const void *b)
{
    const cp_item *x = a, *y = b;

    if (x->valid != y->valid)
        return x->valid ? -1 : 1;
    if (x->cp.size != y->cp.size)
        return x->cp.size < y->cp.size ? -1 : 1;
    return strcmp(x->label, y->label);
}

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

/* Loads the checkpoint file and checkpoints/<size>, checks signatures on
 * the pool, and picks the tree size to verify to. */
static int load_checkpoints(verifier *v)
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
    qsort(v->cps, v->ncps, sizeof(*v->cps), cp_cmp);
    for (i = 0; i < v->ncps; i++)
        if (v->cps[i].valid && v->cps[i].cp.size > v->size)
            report_add(&v->found, "%s: tree size %" PRIu64 " is past the "
                       "export's %" PRIu64 " leaves; it cannot be checked",
                       v->cps[i].label, v->cps[i].cp.size, v->size);
    return 0;
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
    verifier *v = arg;
    tree_bundle *r = &v->batch[i];
    uint64_t b = v->batch_first + i;
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
static upper_tile *upper_get(verifier *v, unsigned level, uint64_t index)
{
    upper_tile *u = &v->upper[level];
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
static void check_upper(verifier *v, miss_list *list, unsigned level,
                        uint64_t index, const merkle_hash h)
{
    unsigned tl = level / TLOG_TILE_HEIGHT;
    upper_tile *u;

    if (level % TLOG_TILE_HEIGHT != 0 || tl >= TLOG_MAX_LEVELS)
        return;
    u = upper_get(v, tl, index / TLOG_TILE_WIDTH);
    if (u->state != PART_OK)
        return;
    if (memcmp(u->data + (index % TLOG_TILE_WIDTH) * MERKLE_HASH_BYTES, h,
               MERKLE_HASH_BYTES) != 0)
        miss_add(list, tl, index / TLOG_TILE_WIDTH,
                 (unsigned)(index % TLOG_TILE_WIDTH));
}

/* Pushes a full bundle's root (level 8, index b) onto a frontier, checking
 * every node it completes against the tiles. */
static void frontier_push(verifier *v, frontier *f, miss_list *list,
                          uint64_t b, const merkle_hash root)
{
    merkle_hash h;
    unsigned level = TLOG_TILE_HEIGHT;
    uint64_t index = b;

    memcpy(h, root, MERKLE_HASH_BYTES);
    check_upper(v, list, level, index, h);
    while (f->n > 0 && f->e[f->n - 1].level == level) {
        merkle_node_hash(f->e[f->n - 1].h, h, h);
        f->n--;
        level++;
        index >>= 1;
        check_upper(v, list, level, index, h);
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
static void check_checkpoints_at(verifier *v, size_t *next, uint64_t size,
                                 const tree_bundle *r, unsigned low)
{
    merkle_hash ra, rb;

    while (*next < v->ncps && v->cps[*next].valid &&
           v->cps[*next].cp.size == size) {
        cp_item *c = &v->cps[(*next)++];

        root_at(&v->fa, r ? r->a : NULL, low, ra);
        root_at(&v->fb, r ? (r->has_b ? r->b : r->a) : NULL, low, rb);
        c->checked = 1;
        c->match_a = memcmp(ra, c->cp.root, MERKLE_HASH_BYTES) == 0;
        c->match_b = memcmp(rb, c->cp.root, MERKLE_HASH_BYTES) == 0;
    }
}

static void progress(const char *what, uint64_t done, uint64_t total,
                     double *last)
{
    double t = now_seconds();

    if (t - *last < 1.0)
        return;
    *last = t;
    fprintf(stderr, "once-audit: %s: %" PRIu64 " of %" PRIu64 " leaves "
            "(%.0f%%)\n", what, done, total,
            total ? 100.0 * (double)done / (double)total : 100.0);
}

/* Merges one bundle's result into the frontiers. 0, or -1 when the tree
 * cannot go on. */
static int tree_merge(verifier *v, uint64_t b, const tree_bundle *r,
                      size_t *next_cp)
{
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
        miss_add(&v->l0, 0, b, r->miss[j]);
    check_checkpoints_at(v, next_cp, base, NULL, 0);
    /* Sizes inside this bundle; a full bundle's end is the next base. */
    for (j = 1; j <= r->width && j < TLOG_TILE_WIDTH; j++)
        check_checkpoints_at(v, next_cp, base + j, r, j);
    if (r->width == TLOG_TILE_WIDTH) {
        frontier_push(v, &v->fa, &v->ua, b,
                      r->a[node_offset(TLOG_TILE_HEIGHT)]);
        frontier_push(v, &v->fb, &v->ub, b,
                      (r->has_b ? r->b : r->a)[node_offset(TLOG_TILE_HEIGHT)]);
    }
    return 0;
}

/* The tree pass: bundles on the pool, merged in order on this thread. */
static int run_tree_pass(verifier *v)
{
    uint64_t count = tlog_tile_count(v->size, 0), b, n;
    size_t next_cp = 0;
    double last = now_seconds();
    int broken = 0;

    v->batch = xcalloc(TREE_BATCH, sizeof(*v->batch));
    v->entries_ok = xcalloc((size_t)count + 1, 1);
    v->entries_digest = xcalloc((size_t)count + 1,
                                sizeof(*v->entries_digest));
    for (b = 0; b < count && !broken; b += n) {
        uint64_t i;

        n = count - b < TREE_BATCH ? count - b : TREE_BATCH;
        v->batch_first = b;
        pool_run(&v->pool, tree_bundle_task, v, (size_t)n);
        for (i = 0; i < n && !broken; i++)
            broken = tree_merge(v, b + i, &v->batch[i], &next_cp) < 0;
        v->problems += report_flush(&v->found);
        progress("tree", (b + n) * TLOG_TILE_WIDTH < v->size
                             ? (b + n) * TLOG_TILE_WIDTH
                             : v->size,
                 v->size, &last);
    }
    /* A last bundle that is full ends at a size the loop has not checked;
     * a partial one ended at v->size, checked above. */
    if (!broken && v->size % TLOG_TILE_WIDTH == 0)
        check_checkpoints_at(v, &next_cp, count * TLOG_TILE_WIDTH, NULL, 0);
    free(v->batch);
    v->batch = NULL;
    return broken ? -1 : 0;
}

static void print_tile_misses(verifier *v, const miss_list *l,
                              const char *verdict)
{
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
static void report_tree(verifier *v)
{
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
    if (v->l0.n > 0 && ok_a) {
        print_tile_misses(v, &v->l0, "is wrong: the entries hash to the "
                          "roots the checkpoints sign");
    } else if (v->l0.n > 0 && ok_b) {
        for (i = 0; i < v->l0.n; i++) {
            const miss *m = &v->l0.m[i];

            tile_path(path, "tile/0", m->tile,
                      tlog_tile_width(v->size, 0, m->tile));
            report_add(&v->found, "leaf %" PRIu64 ": entry was changed: it "
                       "does not hash to %s hash %u, which the signed "
                       "checkpoints confirm",
                       m->tile * TLOG_TILE_WIDTH + m->pos, path, m->pos);
        }
        print_tile_misses(v, &v->ub, "differs from the signed tree");
        return;
    } else {
        for (i = 0; i < v->l0.n; i++) {
            const miss *m = &v->l0.m[i];

            tile_path(path, "tile/0", m->tile,
                      tlog_tile_width(v->size, 0, m->tile));
            report_add(&v->found, "leaf %" PRIu64 ": entry does not hash to "
                       "%s hash %u",
                       m->tile * TLOG_TILE_WIDTH + m->pos, path, m->pos);
        }
    }
    print_tile_misses(v, &v->ua, "differs from the tree recomputed from the "
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

/* ---- evidence ---- */

typedef struct evidence_bundle {
    report problems;
    uint64_t checked, unauthenticated;
    uint64_t pinned; /* signatures an earlier run checked (--since) */
} evidence_bundle;

typedef struct evidence_job {
    verifier *v;
    uint64_t *bundles;      /* bundle numbers of this round */
    evidence_bundle *results;
} evidence_job;

/* A leaf field matches the envelope's, or is empty on a refusal (the
 * broker may refuse before it decodes the body). */
static int field_ok(const char *leaf, const char *body, int refused)
{
    return strcmp(leaf, body) == 0 || (refused && leaf[0] == '\0');
}

static void check_subject(verifier *v, report *p, uint64_t index,
                          const Once__LogLeaf *leaf, const char *type,
                          const char *subject, int refused)
{
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES];

    if (!v->have_audit_key)
        return;
    if (refused && leaf->subject_hash.len == 0)
        return;
    audit_subject_hash(v->audit_key, type, subject, h);
    if (leaf->subject_hash.len != sizeof(h) ||
        memcmp(leaf->subject_hash.data, h, sizeof(h)) != 0)
        report_add(p, "leaf %" PRIu64 ": subject hash does not match the "
                   "subject in the evidence", index);
}

/* Checks a signed record (publish or revoke) against the leaf. */
static void check_record(verifier *v, report *p, uint64_t index,
                         const Once__LogLeaf *leaf,
                         const Once__SignedRecord *rec, int refused)
{
    uint8_t digest[32];
    Once__RecordHeader *h;

    if (rec == NULL) {
        if (!refused)
            report_add(p, "leaf %" PRIu64 ": evidence holds no record",
                       index);
        return;
    }
    digest_sha256(digest, rec->header.data, rec->header.len);
    if (!(refused && leaf->record_digest.len == 0) &&
        (leaf->record_digest.len != 32 ||
         memcmp(leaf->record_digest.data, digest, 32) != 0))
        report_add(p, "leaf %" PRIu64 ": record digest does not match the "
                   "record header in the evidence", index);
    h = once__record_header__unpack(NULL, rec->header.len, rec->header.data);
    if (h == NULL) {
        if (!refused)
            report_add(p, "leaf %" PRIu64 ": the evidence's record header "
                       "does not decode", index);
        return;
    }
    if (!field_ok(leaf->record_type, h->type, refused))
        report_add(p, "leaf %" PRIu64 ": record type %s is not the "
                   "evidence's %s", index, leaf->record_type, h->type);
    if (leaf->record_version != h->version &&
        !(refused && leaf->record_version == 0))
        report_add(p, "leaf %" PRIu64 ": record version %" PRIu64 " is not "
                   "the evidence's %" PRIu64, index, leaf->record_version,
                   h->version);
    check_subject(v, p, index, leaf, h->type, h->subject, refused);
    once__record_header__free_unpacked(h, NULL);
}

static void check_body(verifier *v, report *p, uint64_t index,
                       const Once__LogLeaf *leaf, const Once__Envelope *env,
                       int refused)
{
    const ProtobufCBinaryData *body = &env->body;

    if (leaf->kind == ONCE__KIND__KIND_REQUEST) {
        Once__Request *q = once__request__unpack(NULL, body->len, body->data);

        if (q == NULL) {
            if (!refused)
                report_add(p, "leaf %" PRIu64 ": the evidence's request "
                           "does not decode", index);
            return;
        }
        if (!field_ok(leaf->record_type, q->type, refused))
            report_add(p, "leaf %" PRIu64 ": record type %s is not the "
                       "requested %s", index, leaf->record_type, q->type);
        if (!field_ok(leaf->purpose, q->purpose, refused))
            report_add(p, "leaf %" PRIu64 ": purpose differs from the "
                       "request's", index);
        if (!field_ok(leaf->case_id, q->case_id, refused))
            report_add(p, "leaf %" PRIu64 ": case id differs from the "
                       "request's", index);
        check_subject(v, p, index, leaf, q->type, q->subject, refused);
        once__request__free_unpacked(q, NULL);
    } else if (leaf->kind == ONCE__KIND__KIND_PUBLISH) {
        Once__Publish *m = once__publish__unpack(NULL, body->len, body->data);

        if (m == NULL) {
            if (!refused)
                report_add(p, "leaf %" PRIu64 ": the evidence's publish "
                           "does not decode", index);
            return;
        }
        check_record(v, p, index, leaf, m->record, refused);
        once__publish__free_unpacked(m, NULL);
    } else {
        Once__Revoke *m = once__revoke__unpack(NULL, body->len, body->data);

        if (m == NULL) {
            if (!refused)
                report_add(p, "leaf %" PRIu64 ": the evidence's revoke "
                           "does not decode", index);
            return;
        }
        check_record(v, p, index, leaf, m->record, refused);
        once__revoke__free_unpacked(m, NULL);
    }
}

/* True when the envelope is a publish or revoke whose signed record does
 * not verify with pk: the broker refuses that as BAD_SIGNATURE too, with a
 * correctly signed envelope (PROTOCOL.md). */
static int record_signature_fails(const Once__Envelope *env, int kind,
                                  const uint8_t pk[32])
{
    const Once__SignedRecord *rec = NULL;
    Once__Publish *pub = NULL;
    Once__Revoke *rev = NULL;
    uint8_t *input;
    int fails = 1;

    if (kind == ONCE__KIND__KIND_PUBLISH) {
        pub = once__publish__unpack(NULL, env->body.len, env->body.data);
        rec = pub != NULL ? pub->record : NULL;
    } else if (kind == ONCE__KIND__KIND_REVOKE) {
        rev = once__revoke__unpack(NULL, env->body.len, env->body.data);
        rec = rev != NULL ? rev->record : NULL;
    } else {
        return 0;
    }
    if (rec != NULL && rec->signature.len == crypto_sign_BYTES &&
        (input = malloc(RECORD_DOMAIN_BYTES + rec->header.len + 1)) != NULL) {
        memcpy(input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
        memcpy(input + RECORD_DOMAIN_BYTES, rec->header.data,
               rec->header.len);
        fails = crypto_sign_verify_detached(
                    rec->signature.data, input,
                    RECORD_DOMAIN_BYTES + rec->header.len, pk) != 0;
        free(input);
    }
    if (pub != NULL)
        once__publish__free_unpacked(pub, NULL);
    if (rev != NULL)
        once__revoke__free_unpacked(rev, NULL);
    return fails;
}

/* The signature on the envelope against the department's key(s). */
static void check_signature(verifier *v, evidence_bundle *r, uint64_t index,
                            const Once__LogLeaf *leaf,
                            const Once__Envelope *env)
{
    int refused = leaf->decision == ONCE__DECISION__DECISION_REFUSED;
    int bad_sig_refusal =
        refused && leaf->error == ONCE__ERROR_CODE__ERROR_BAD_SIGNATURE;
    const dept_key *k = NULL;
    size_t first, count, i;
    char t[32], w[32];

    keys_of(&v->keys, leaf->department, &first, &count);
    if (count == 0) {
        if (refused && leaf->error == ONCE__ERROR_CODE__ERROR_UNKNOWN_SENDER) {
            r->unauthenticated++;
            return;
        }
        report_add(&r->problems, "leaf %" PRIu64 ": department %s has no key "
                   "in keys.txt", index, leaf->department);
        return;
    }
    /* The key valid at the leaf's time; else the latest one. */
    for (i = first; i < first + count; i++) {
        k = &v->keys.keys[i];
        if (leaf->time >= k->from && (k->until == 0 || leaf->time < k->until))
            break;
    }
    if (index < v->evidence_from && keys_hold(&v->kept_keys, k->id, k->pk)) {
        /* Same envelope bytes (the leaf's digest pins them), same key: the
         * earlier run's verdict stands. */
        r->pinned++;
    } else if (envelope_verify(env, k->pk) == 0) {
        if (bad_sig_refusal &&
            !record_signature_fails(env, (int)leaf->kind, k->pk))
            report_add(&r->problems, "leaf %" PRIu64 ": refused as "
                       "BAD_SIGNATURE, yet the envelope's signature by %s "
                       "verifies (and its record's)", index, leaf->department);
    } else if (!bad_sig_refusal) {
        report_add(&r->problems, "leaf %" PRIu64 ": the envelope's signature "
                   "by %s does not verify", index, leaf->department);
    }
    if (!refused && leaf->time < k->from) {
        format_time(leaf->time, t);
        format_time(k->from, w);
        report_add(&r->problems, "leaf %" PRIu64 ": granted at %s, before "
                   "%s's key was valid (from %s)", index, t, leaf->department,
                   w);
    } else if (!refused && k->until != 0 && leaf->time >= k->until) {
        format_time(leaf->time, t);
        format_time(k->until, w);
        report_add(&r->problems, "leaf %" PRIu64 ": granted at %s, after "
                   "%s's key stopped being valid (%s)", index, t,
                   leaf->department, w);
    }
}

static void check_leaf(verifier *v, evidence_bundle *r, uint64_t index,
                       const uint8_t *data, size_t len,
                       const uint8_t *evidence, size_t evidence_len)
{
    Once__LogLeaf *leaf = once__log_leaf__unpack(NULL, len, data);
    Once__Envelope *env;
    report *p = &r->problems;
    uint8_t digest[32];
    uint64_t omitted_size;
    int refused;

    if (leaf == NULL) {
        report_add(p, "leaf %" PRIu64 ": entry is not a LogLeaf", index);
        return;
    }
    refused = leaf->decision == ONCE__DECISION__DECISION_REFUSED;
    if (leaf->kind != ONCE__KIND__KIND_PUBLISH &&
        leaf->kind != ONCE__KIND__KIND_REVOKE &&
        leaf->kind != ONCE__KIND__KIND_REQUEST)
        report_add(p, "leaf %" PRIu64 ": kind %d is not publish, revoke or "
                   "request", index, (int)leaf->kind);
    if (!(leaf->decision == ONCE__DECISION__DECISION_GRANTED &&
          leaf->error == ONCE__ERROR_CODE__ERROR_NONE) &&
        !(refused && leaf->error != ONCE__ERROR_CODE__ERROR_NONE))
        report_add(p, "leaf %" PRIu64 ": decision %d with error %s is "
                   "inconsistent", index, (int)leaf->decision,
                   once_error_name((int)leaf->error));
    if (evidence_omitted_parse(evidence, evidence_len, &omitted_size,
                               digest)) {
        /* AUDIT.md: only a refusal of a large envelope may omit it. */
        if (!refused || omitted_size <= EVIDENCE_REFUSAL_MAX ||
            leaf->envelope_digest.len != 32 ||
            memcmp(leaf->envelope_digest.data, digest, 32) != 0)
            report_add(p, "leaf %" PRIu64 ": evidence omitted, which only "
                       "a refusal of an envelope over %d bytes may be, with "
                       "the leaf's envelope digest", index,
                       EVIDENCE_REFUSAL_MAX);
        r->checked++;
        r->unauthenticated++;
        once__log_leaf__free_unpacked(leaf, NULL);
        return;
    }
    digest_sha256(digest, evidence, evidence_len);
    if (leaf->envelope_digest.len != 32 ||
        memcmp(leaf->envelope_digest.data, digest, 32) != 0)
        report_add(p, "leaf %" PRIu64 ": the evidence does not match the "
                   "leaf's envelope digest", index);
    r->checked++;
    env = envelope_unpack(evidence, evidence_len);
    if (env == NULL) {
        report_add(p, "leaf %" PRIu64 ": the evidence is not an envelope",
                   index);
        once__log_leaf__free_unpacked(leaf, NULL);
        return;
    }
    if (strcmp(env->sender, leaf->department) != 0)
        report_add(p, "leaf %" PRIu64 ": department %s is not the envelope's "
                   "sender %s", index, leaf->department, env->sender);
    if ((int)env->kind != (int)leaf->kind)
        report_add(p, "leaf %" PRIu64 ": kind %s is not the envelope's %s",
                   index, kind_name((int)leaf->kind),
                   kind_name((int)env->kind));
    check_signature(v, r, index, leaf, env);
    if (leaf->kind == ONCE__KIND__KIND_PUBLISH ||
        leaf->kind == ONCE__KIND__KIND_REVOKE ||
        leaf->kind == ONCE__KIND__KIND_REQUEST)
        check_body(v, p, index, leaf, env, refused);
    once__envelope__free_unpacked(env, NULL);
    once__log_leaf__free_unpacked(leaf, NULL);
}

static void evidence_bundle_task(void *arg, size_t i)
{
    evidence_job *job = arg;
    verifier *v = job->v;
    evidence_bundle *r = &job->results[i];
    uint64_t b = job->bundles[i], base = b * TLOG_TILE_WIDTH;
    unsigned width = tlog_tile_width(v->size, 0, b), j;
    size_t eoffs[TLOG_TILE_WIDTH], elens[TLOG_TILE_WIDTH];
    size_t voffs[TLOG_TILE_WIDTH], vlens[TLOG_TILE_WIDTH], elen, vlen;
    char path[TLOG_PATH_MAX], why[96];
    uint8_t *entries = NULL, *evidence = NULL;
    uint8_t digest[DIGEST_SHA256_BYTES];
    int rc;

    tile_path(path, "tile/entries", b, width);
    if (read_at(v->x.fd, path, &entries, &elen) < 0) {
        report_add(&r->problems, "%s: cannot be read again: leaves [%" PRIu64
                   ", %" PRIu64 ") cannot be checked", path, base,
                   base + width);
        goto out;
    }
    digest_sha256(digest, entries, elen);
    if (memcmp(digest, v->entries_digest[b], sizeof(digest)) != 0 ||
        split_bundle(entries, elen, width, TLOG_ENTRY_LENGTH_BYTES, eoffs,
                     elens, why, sizeof(why)) < 0) {
        report_add(&r->problems, "%s: changed while it was being verified: "
                   "leaves [%" PRIu64 ", %" PRIu64 ") cannot be checked",
                   path, base, base + width);
        goto out;
    }
    tile_path(path, audit_evidence_dir(&v->evidence), b, width);
    rc = read_at(v->x.fd, path, &evidence, &vlen);
    if (rc == 0 &&
        audit_evidence_unwrap(&v->evidence, &evidence, &vlen, why,
                              sizeof(why)) < 0) {
        report_add(&r->problems, "%s: %s: leaves [%" PRIu64 ", %" PRIu64
                   ") cannot be checked", path, why, base, base + width);
        goto out;
    }
    if (rc < 0) {
        report_add(&r->problems, "%s: %s: leaves [%" PRIu64 ", %" PRIu64
                   ") have no evidence", path,
                   rc == -ENOENT ? "missing" : strerror(-rc), base,
                   base + width);
        goto out;
    }
    if (split_bundle(evidence, vlen, width, TLOG_EVIDENCE_LENGTH_BYTES, voffs,
                     vlens, why, sizeof(why)) < 0) {
        report_add(&r->problems, "%s: malformed (%s): leaves [%" PRIu64
                   ", %" PRIu64 ") cannot be checked", path, why, base,
                   base + width);
        goto out;
    }
    for (j = 0; j < width; j++)
        check_leaf(v, r, base + j, entries + eoffs[j], elens[j],
                   evidence + voffs[j], vlens[j]);
out:
    free(entries);
    free(evidence);
}

static void run_evidence_pass(verifier *v, uint64_t *checked,
                              uint64_t *unauthenticated, uint64_t *pinned)
{
    uint64_t count = tlog_tile_count(v->size, 0), b = 0, done = 0, total = 0;
    uint64_t bundles[EVIDENCE_BATCH];
    evidence_bundle results[EVIDENCE_BATCH];
    evidence_job job = {v, bundles, results};
    double last = now_seconds();
    size_t n, i;

    for (b = 0; b < count; b++)
        if (v->entries_ok[b])
            total += tlog_tile_width(v->size, 0, b);
    b = 0;
    while (b < count) {
        for (n = 0; n < EVIDENCE_BATCH && b < count; b++)
            if (v->entries_ok[b])
                bundles[n++] = b;
        memset(results, 0, sizeof(results));
        pool_run(&v->pool, evidence_bundle_task, &job, n);
        for (i = 0; i < n; i++) {
            v->problems += report_flush(&results[i].problems);
            report_free(&results[i].problems);
            *checked += results[i].checked;
            *unauthenticated += results[i].unauthenticated;
            *pinned += results[i].pinned;
            done += tlog_tile_width(v->size, 0, bundles[i]);
        }
        progress("evidence", done, total, &last);
    }
}

/* The state an auditor keeps between runs (--save, --since): a directory
 * holding the checkpoint a clean verify ended at and the keys.txt it
 * checked signatures with. The file `verified` marks it as written by
 * --save, so that an export directory, which has the other two files, is
 * not taken for one by mistake. */
#define STATE_MARK "verified"
#define KEPT_LABEL "--since checkpoint"

/* Adds the checkpoint of the state directory (--since) to the ones checked
 * against the recomputed tree, and loads its keys. A state whose
 * checkpoint does not verify, or is of a larger tree than the export, is a
 * problem, and then every evidence envelope is checked. */
static void load_state(verifier *v, const char *path)
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
    qsort(v->cps, v->ncps, sizeof(*v->cps), cp_cmp);
    keys_load(fd, &v->kept_keys, &v->found);
out:
    close(fd);
}

/* --save: after a clean run whose evidence covered every leaf, the state
 * a later --since starts from. STATE must be the auditor's and writable by
 * nobody else, and nothing in it is written through a link (file_io.c). */
static int save_state(const verifier *v, const char *path, once_error *err)
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

/* Whether the evidence can be read: in plain, or sealed to the auditor
 * whose key was given (audit_sealed.c). */
static int evidence_readable(verifier *v, char *why, size_t why_cap)
{
    uint8_t *recipient = NULL;
    size_t len = 0;
    int sealed, rc;

    sealed = read_at(v->x.fd, AUDIT_SEALED_KEY_FILE, &recipient, &len) == 0;
    rc = audit_evidence_prepare(&v->evidence, sealed ? recipient : NULL, len,
                                why, why_cap);
    free(recipient);
    return rc;
}

/* The size of the kept checkpoint when the tree pass found its root to be
 * the root of the entry bundles at its size, else 0. */
static uint64_t kept_size_confirmed(const verifier *v)
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

static void usage_verify(FILE *f)
{
    fprintf(f,
            "usage: once-audit verify DIR --key BROKER.pub [--origin NAME]\n"
            "                         [--audit-key FILE] [--from INDEX]\n"
            "                         [--save STATE] [--since STATE]\n"
            "                         [--evidence-key AUDITOR.key]\n"
            "                         [--threads N]\n"
            "\n"
            "Checks an exported log completely: recomputes every leaf hash\n"
            "and the whole tree from the entry bundles and compares every\n"
            "hash tile; checks the signature of every checkpoint and that its\n"
            "root is the recomputed root at its size; checks every evidence\n"
            "envelope against the department keys in keys.txt and against\n"
            "its leaf. Every problem is printed as a FAIL line naming the\n"
            "leaf, tile or checkpoint. Exit status 0: all good; 1: problems.\n"
            "\n"
            "  --key FILE        the broker's public key file (64 hex digits)\n"
            "  --origin NAME     the log's origin line (default: the one in\n"
            "                    DIR/checkpoint)\n"
            "  --audit-key FILE  also check every leaf's keyed subject hash\n"
            "  --from INDEX      the export is a range from INDEX: earlier\n"
            "                    entry bundles may be absent (their hashes\n"
            "                    are then only checked through the tiles)\n"
            "  --save STATE      when everything checked out and every leaf's\n"
            "                    evidence was checked, keep the checkpoint\n"
            "                    and keys.txt in directory STATE for --since\n"
            "  --since STATE     a state saved by an earlier run: its\n"
            "                    checkpoint must verify and be the recomputed\n"
            "                    root at its size (so those leaves and their\n"
            "                    envelopes are the ones checked then); their\n"
            "                    envelopes' signatures by keys that have not\n"
            "                    changed are not checked again. Everything\n"
            "                    else is.\n"
            "  --evidence-key FILE  the auditor's secret key file, when the\n"
            "                    evidence is sealed to it (oncectl log export\n"
            "                    --evidence-to): it is opened in memory only;\n"
            "                    without it sealed evidence is not checked\n"
            "  --threads N       worker threads (default: online CPUs)\n");
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"audit-key", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},
        {"since", required_argument, NULL, 's'},
        {"save", required_argument, NULL, 'S'},
        {"evidence-key", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *origin = NULL, *audit_key = NULL;
    const char *since = NULL, *save = NULL, *evidence_key = NULL;
    char why[512];
    uint64_t checked = 0, unauthenticated = 0, pinned = 0, threads = 0;
    uint64_t from = 0;
    double t0, t_tree, t_ev;
    verifier *v;
    size_t i;
    int c, rc, broken;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'a': audit_key = optarg; break;
        case 't':
            if (parse_u64(optarg, &threads) < 0 || threads == 0 ||
                threads > 256) {
                fprintf(stderr, "once-audit: --threads takes 1..256\n");
                return EXIT_USAGE;
            }
            break;
        case 'f':
            if (parse_u64(optarg, &from) < 0) {
                fprintf(stderr, "once-audit: --from takes a leaf index\n");
                return EXIT_USAGE;
            }
            break;
        case 's': since = optarg; break;
        case 'S': save = optarg; break;
        case 'e': evidence_key = optarg; break;
        case 'h': usage_verify(stdout); return EXIT_CLEAN;
        default: usage_verify(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || key == NULL) {
        usage_verify(stderr);
        return EXIT_USAGE;
    }
    v = xcalloc(1, sizeof(*v));
    v->from = from;
    for (i = 0; i < TLOG_MAX_LEVELS; i++)
        v->upper[i].state = -1;
    if (load_public_key(key, v->broker_pk) < 0) {
        free(v);
        return EXIT_USAGE;
    }
    if (audit_key != NULL) {
        once_error err;

        if (audit_key_load(v->audit_key, audit_key, &err) < 0) {
            fprintf(stderr, "once-audit: %s\n", err.message);
            free(v);
            return EXIT_USAGE;
        }
        v->have_audit_key = 1;
    }
    if (audit_evidence_load_key(&v->evidence, evidence_key, why,
                                sizeof(why)) < 0) {
        fprintf(stderr, "once-audit: %s\n", why);
        sodium_memzero(v->audit_key, sizeof(v->audit_key));
        free(v);
        return EXIT_USAGE;
    }
    if (export_open(&v->x, argv[optind]) < 0) {
        free(v);
        return EXIT_PROBLEMS;
    }
    if (origin != NULL) {
        snprintf(v->origin, sizeof(v->origin), "%s", origin);
    } else if (checkpoint_note_origin((const char *)v->x.note,
                                      v->x.note_len, v->origin,
                                      sizeof(v->origin)) < 0) {
        fprintf(stderr, "once-audit: %s/checkpoint has no origin line\n",
                v->x.path);
        export_close(&v->x);
        free(v);
        return EXIT_PROBLEMS;
    }
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        threads = n > 0 ? (uint64_t)n : 1;
    }
    v->threads = (int)threads;
    if (pool_start(&v->pool, v->threads) < 0) {
        fprintf(stderr, "once-audit: cannot start worker threads\n");
        export_close(&v->x);
        free(v);
        return EXIT_PROBLEMS;
    }

    t0 = now_seconds();
    rc = load_checkpoints(v);
    if (rc == 0 && since != NULL)
        load_state(v, since);
    v->problems += report_flush(&v->found);
    if (rc < 0) {
        printf("FAIL no checkpoint in %s verifies with this key as ",
               v->x.path);
        audit_put_escaped(stdout, v->origin);
        printf(": nothing can be checked\n");
        v->problems++;
        goto done;
    }
    broken = run_tree_pass(v) < 0;
    report_tree(v);
    v->problems += report_flush(&v->found);
    t_tree = now_seconds() - t0;
    if (v->pruned_until > 0)
        printf("note: leaves [0, %" PRIu64 ") have no entry bundles in this "
               "export (--from); their hashes come from tile/0 and were "
               "checked against the checkpoints only\n", v->pruned_until);
    printf("tree: %" PRIu64 " leaves, %zu checkpoints, %" PRIu64 " tiles in "
           "%.2f s: %.0f leaves/s%s\n", v->size, v->ncps, v->tiles_checked,
           t_tree, t_tree > 0 ? (double)v->size / t_tree : 0.0,
           broken ? " (stopped early)" : "");
    fflush(stdout);

    t0 = now_seconds();
    keys_load(v->x.fd, &v->keys, &v->found);
    v->evidence_from = kept_size_confirmed(v);
    if (evidence_readable(v, why, sizeof(why)) < 0) {
        report_add(&v->found, "%s", why);
        v->problems += report_flush(&v->found);
        printf("evidence: not checked\n");
        goto done;
    }
    v->problems += report_flush(&v->found);
    run_evidence_pass(v, &checked, &unauthenticated, &pinned);
    t_ev = now_seconds() - t0;
    printf("evidence: %" PRIu64 " envelopes in %.2f s: %.0f envelopes/s with "
           "%d threads", checked, t_ev,
           t_ev > 0 ? (double)checked / t_ev : 0.0, v->threads);
    if (pinned > 0)
        printf("; %" PRIu64 " signatures below the saved state's %" PRIu64
               " leaves were checked by an earlier run", pinned,
               v->evidence_from);
    if (unauthenticated > 0)
        printf(" (%" PRIu64 " refusals have no signature to check: of "
               "unknown senders, or with their evidence omitted)",
               unauthenticated);
    printf("\n");
    if (v->have_audit_key)
        printf("subject hashes: checked with the audit key\n");
done:
    if (v->problems == 0)
    {
        printf("verify: OK: %s, tree size %" PRIu64 ", origin ", v->x.path,
               v->size);
        audit_put_escaped(stdout, v->origin);
        fputc('\n', stdout);
    }
    else
        printf("verify: FAILED: %zu problems\n", v->problems);
    rc = v->problems == 0 ? EXIT_CLEAN : EXIT_PROBLEMS;
    if (save != NULL && v->problems > 0) {
        printf("state not saved: the run found problems\n");
    } else if (save != NULL && v->pruned_until > v->evidence_from) {
        printf("state not saved: the evidence of leaves [%" PRIu64 ", %"
               PRIu64 ") was not in this export\n", v->evidence_from,
               v->pruned_until);
    } else if (save != NULL) {
        once_error err;

        if (save_state(v, save, &err) < 0) {
            fprintf(stderr, "once-audit: cannot save the state in %s: %s\n",
                    save, err.message);
            rc = EXIT_PROBLEMS;
        } else {
            printf("state saved in %s: verify the next export with "
                   "--since %s\n", save, save);
        }
    }
    pool_stop(&v->pool);
    for (i = 0; i < v->ncps; i++)
        free(v->cps[i].text);
    free(v->cps);
    for (i = 0; i < TLOG_MAX_LEVELS; i++)
        free(v->upper[i].data);
    free(v->l0.m);
    free(v->ua.m);
    free(v->ub.m);
    free(v->entries_ok);
    free(v->entries_digest);
    free(v->keys.keys);
    free(v->kept_keys.keys);
    report_free(&v->found);
    export_close(&v->x);
    sodium_memzero(v->audit_key, sizeof(v->audit_key));
    audit_evidence_clear(&v->evidence);
    free(v);
    return rc;
}

/* ------------------------------------------------------------------------
 * prove and check-proof
 * ---------------------------------------------------------------------- */

static void usage_prove(FILE *f)
{
    fprintf(f,
            "usage: once-audit prove DIR INDEX [-o FILE]\n"
            "\n"
            "Writes a C2SP tlog-proof (c2sp.org/tlog-proof@v1) that leaf\n"
            "INDEX is in the tree DIR/checkpoint signs: the inclusion proof,\n"
            "the checkpoint, and the leaf itself as the proof's extra data,\n"
            "so the file stands alone. Check it with once-audit check-proof.\n"
            "\n"
            "  -o, --output FILE  write here instead of standard output\n");
}

static int cmd_prove(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out_path = NULL;
    merkle_hash leaf_hash;
    tlog_proof proof;
    tile_reader tr;
    export_dir x;
    checkpoint cp;
    once_error err;
    uint64_t index;
    uint8_t *leaf = NULL;
    size_t leaf_len = 0, text_len;
    char why[256], *text = NULL;
    FILE *out;
    int c, written, rc = EXIT_PROBLEMS;

    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'h': usage_prove(stdout); return EXIT_CLEAN;
        default: usage_prove(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 2 || parse_u64(argv[optind + 1], &index) < 0) {
        usage_prove(stderr);
        return EXIT_USAGE;
    }
    if (export_open(&x, argv[optind]) < 0)
        return EXIT_PROBLEMS;
    memset(&tr, 0, sizeof(tr));
    if (checkpoint_parse_unverified((const char *)x.note, x.note_len, &cp,
                                    NULL) < 0) {
        fprintf(stderr, "once-audit: %s/checkpoint is malformed\n", x.path);
        goto out;
    }
    if (index >= cp.size) {
        fprintf(stderr, "once-audit: leaf %" PRIu64 " is not in the tree of "
                "%" PRIu64 " leaves\n", index, cp.size);
        goto out;
    }
    tr.dirfd = x.fd;
    tr.size = cp.size;
    if (read_entry(x.fd, cp.size, index, &leaf, &leaf_len, why,
                   sizeof(why)) == 0) {
        merkle_leaf_hash(leaf, leaf_len, leaf_hash);
    } else if (tile_node(&tr, 0, index, leaf_hash) < 0) {
        fprintf(stderr, "once-audit: leaf %" PRIu64 ": %s; %s\n", index, why,
                tr.why);
        goto out;
    }
    memset(&proof, 0, sizeof(proof));
    if (merkle_nodes_inclusion_proof(tile_node, &tr, index, cp.size,
                                     proof.hashes, &proof.nhashes) < 0) {
        fprintf(stderr, "once-audit: cannot build the proof: %s\n", tr.why);
        goto out;
    }
    /* Refuse to hand out a proof that does not hold. */
    if (merkle_verify_inclusion(index, cp.size, leaf_hash, proof.hashes,
                                proof.nhashes, cp.root) < 0) {
        fprintf(stderr, "once-audit: the tiles in %s do not lead to the "
                "checkpoint's root; run once-audit verify\n", x.path);
        goto out;
    }
    /* Without an entry bundle the proof still holds, but carries no
     * leaf: check-proof then needs --leaf-file or --dir. */
    proof.has_extra = leaf != NULL;
    proof.extra = leaf;
    proof.extra_len = leaf_len;
    proof.index = index;
    proof.note = (const char *)x.note;
    proof.note_len = x.note_len;
    if (tlog_proof_format(&proof, &text, &text_len, &err) < 0) {
        fprintf(stderr, "once-audit: cannot write the proof: %s\n",
                err.message);
        goto out;
    }
    out = stdout;
    if (out_path != NULL) {
        /* Never through a link planted at the name (file_io.c's rule). */
        int fd = open(out_path,
                      O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                      0644);

        out = fd < 0 ? NULL : fdopen(fd, "w");
        if (out == NULL && fd >= 0)
            close(fd);
    }
    if (out == NULL) {
        fprintf(stderr, "once-audit: cannot create %s: %s\n", out_path,
                strerror(errno));
        goto out;
    }
    written = fwrite(text, 1, text_len, out) == text_len;
    if (out_path ? fclose(out) != 0 : fflush(out) != 0)
        written = 0;
    if (!written) {
        fprintf(stderr, "once-audit: cannot write the proof\n");
        goto out;
    }
    rc = EXIT_CLEAN;
out:
    free(text);
    free(leaf);
    tile_reader_free(&tr);
    export_close(&x);
    return rc;
}

static void usage_check_proof(FILE *f)
{
    fprintf(f,
            "usage: once-audit check-proof FILE --key BROKER.pub\n"
            "                              [--origin NAME]\n"
            "                              [--leaf-file F | --dir DIR]\n"
            "\n"
            "Checks a C2SP tlog-proof: the checkpoint's signature by the\n"
            "broker, and that the leaf is in the tree it signs at the index\n"
            "given. The leaf comes from --leaf-file (raw LogLeaf bytes), from\n"
            "an export (--dir), or else from the proof's extra line.\n");
}

static void print_leaf_summary(const uint8_t *data, size_t len)
{
    Once__LogLeaf *leaf = once__log_leaf__unpack(NULL, len, data);
    char t[32];

    if (leaf == NULL) {
        printf("leaf: not a LogLeaf\n");
        return;
    }
    format_time(leaf->time, t);
    printf("leaf: %s ", t);
    audit_put_escaped(stdout, leaf->department);
    printf(" %s type ", kind_name((int)leaf->kind));
    audit_put_escaped(stdout, leaf->record_type);
    fputs(" purpose \"", stdout);
    audit_put_escaped(stdout, leaf->purpose);
    fputs("\" case \"", stdout);
    audit_put_escaped(stdout, leaf->case_id);
    printf("\" %s%s%s\n",
           leaf->decision == ONCE__DECISION__DECISION_GRANTED ? "GRANTED"
                                                             : "REFUSED",
           leaf->error ? " " : "",
           leaf->error ? once_error_name((int)leaf->error) : "");
    once__log_leaf__free_unpacked(leaf, NULL);
}

static int cmd_check_proof(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"leaf-file", required_argument, NULL, 'l'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *origin = NULL, *leaf_file = NULL, *dir = NULL;
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES], *leaf = NULL;
    char name[CHECKPOINT_MAX_ORIGIN + 1], why[256];
    merkle_hash leaf_hash;
    uint8_t *text;
    size_t text_len, leaf_len = 0;
    tlog_proof p;
    checkpoint cp;
    once_error err;
    int c, rc = EXIT_PROBLEMS;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'l': leaf_file = optarg; break;
        case 'd': dir = optarg; break;
        case 'h': usage_check_proof(stdout); return EXIT_CLEAN;
        default: usage_check_proof(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || key == NULL || (leaf_file && dir)) {
        usage_check_proof(stderr);
        return EXIT_USAGE;
    }
    if (load_public_key(key, pk) < 0)
        return EXIT_USAGE;
    rc = read_at(AT_FDCWD, argv[optind], &text, &text_len);
    if (rc < 0 || text_len > TLOG_PROOF_MAX_BYTES) {
        fprintf(stderr, "once-audit: cannot read %s: %s\n", argv[optind],
                rc < 0 && rc != -EFBIG ? strerror(-rc) : "too large");
        if (rc == 0)
            free(text);
        return EXIT_PROBLEMS;
    }
    rc = EXIT_PROBLEMS;
    if (tlog_proof_parse((const char *)text, text_len, &p, &err) < 0) {
        printf("FAIL %s: %s\n", argv[optind], err.message);
        free(text);
        return rc;
    }
    if (origin == NULL) {
        if (checkpoint_note_origin(p.note, p.note_len, name,
                                   sizeof(name)) < 0) {
            printf("FAIL %s: the checkpoint has no origin line\n",
                   argv[optind]);
            goto out;
        }
        origin = name;
    }
    if (checkpoint_verify(p.note, p.note_len, origin, pk, &cp, &err) < 0) {
        printf("FAIL %s: checkpoint: %s\n", argv[optind], err.message);
        goto out;
    }
    if (leaf_file != NULL) {
        int r = read_at(AT_FDCWD, leaf_file, &leaf, &leaf_len);

        if (r < 0) {
            fprintf(stderr, "once-audit: cannot read %s: %s\n", leaf_file,
                    strerror(-r));
            goto out;
        }
    } else if (dir != NULL) {
        export_dir x;
        checkpoint dcp;

        if (export_open(&x, dir) < 0)
            goto out;
        once_error perr = {0};

        if (checkpoint_parse_unverified((const char *)x.note, x.note_len,
                                        &dcp, &perr) < 0)
            snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1,
                     perr.message);
        if (perr.code != 0 ||
            read_entry(x.fd, dcp.size, p.index, &leaf, &leaf_len, why,
                       sizeof(why)) < 0) {
            fprintf(stderr, "once-audit: %s: cannot read leaf %" PRIu64
                    ": %s\n", dir, p.index, why);
            export_close(&x);
            goto out;
        }
        export_close(&x);
    } else if (p.has_extra) {
        leaf = p.extra;
        leaf_len = p.extra_len;
        p.extra = NULL;
    } else {
        fprintf(stderr, "once-audit: the proof carries no leaf; give "
                "--leaf-file or --dir\n");
        goto out;
    }
    merkle_leaf_hash(leaf, leaf_len, leaf_hash);
    if (merkle_verify_inclusion(p.index, cp.size, leaf_hash, p.hashes,
                                p.nhashes, cp.root) < 0) {
        printf("FAIL %s: leaf %" PRIu64 " is not in the tree of %" PRIu64
               " leaves this checkpoint signs\n", argv[optind], p.index,
               cp.size);
        goto out;
    }
    print_leaf_summary(leaf, leaf_len);
    printf("proof: OK: leaf %" PRIu64 " is in the tree of %" PRIu64 " leaves "
           "signed by ", p.index, cp.size);
    audit_put_escaped(stdout, origin);
    fputc('\n', stdout);
    rc = EXIT_CLEAN;
out:
    free(leaf);
    tlog_proof_clear(&p);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------
 * consistency
 * ---------------------------------------------------------------------- */

static void usage_consistency(FILE *f)
{
    fprintf(f,
            "usage: once-audit consistency OLD_CHECKPOINT DIR --key "
            "BROKER.pub\n"
            "                              [--origin NAME]\n"
            "\n"
            "Shows that the log only grew since OLD_CHECKPOINT, a signed\n"
            "checkpoint you kept: both checkpoints must verify, the root of\n"
            "the export's tree at the old size must be the old root, and an\n"
            "RFC 9162 consistency proof built from the export's tiles must\n"
            "verify from the old checkpoint to DIR/checkpoint.\n");
}

static int cmd_consistency(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *origin = NULL;
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES], *old_note = NULL;
    char name[CHECKPOINT_MAX_ORIGIN + 1];
    merkle_hash root, proof[MERKLE_MAX_PROOF];
    checkpoint old_cp, new_cp;
    tile_reader tr;
    export_dir x;
    once_error err;
    size_t old_len, proof_len;
    int c, rc;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'h': usage_consistency(stdout); return EXIT_CLEAN;
        default: usage_consistency(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 2 || key == NULL) {
        usage_consistency(stderr);
        return EXIT_USAGE;
    }
    if (load_public_key(key, pk) < 0)
        return EXIT_USAGE;
    rc = read_at(AT_FDCWD, argv[optind], &old_note, &old_len);
    if (rc < 0) {
        fprintf(stderr, "once-audit: cannot read %s: %s\n", argv[optind],
                strerror(-rc));
        return EXIT_PROBLEMS;
    }
    if (export_open(&x, argv[optind + 1]) < 0) {
        free(old_note);
        return EXIT_PROBLEMS;
    }
    memset(&tr, 0, sizeof(tr));
    rc = EXIT_PROBLEMS;
    if (origin == NULL) {
        if (checkpoint_note_origin((const char *)x.note, x.note_len, name,
                                   sizeof(name)) < 0) {
            printf("FAIL %s/checkpoint has no origin line\n", x.path);
            goto out;
        }
        origin = name;
    }
    if (checkpoint_verify((const char *)old_note, old_len, origin, pk,
                          &old_cp, &err) < 0) {
        printf("FAIL old checkpoint %s: %s\n", argv[optind], err.message);
        goto out;
    }
    if (checkpoint_verify((const char *)x.note, x.note_len, origin, pk,
                          &new_cp, &err) < 0) {
        printf("FAIL %s/checkpoint: %s\n", x.path, err.message);
        goto out;
    }
    printf("old checkpoint: size %" PRIu64 "\nexport checkpoint: size %" PRIu64
           "\n", old_cp.size, new_cp.size);
    if (old_cp.size > new_cp.size) {
        printf("FAIL the old checkpoint (size %" PRIu64 ") is newer than the "
               "export (size %" PRIu64 "): export again\n", old_cp.size,
               new_cp.size);
        goto out;
    }
    tr.dirfd = x.fd;
    tr.size = new_cp.size;
    if (merkle_nodes_root(tile_node, &tr, old_cp.size, root) < 0) {
        printf("FAIL cannot compute the root at size %" PRIu64 ": %s\n",
               old_cp.size, tr.why);
        goto out;
    }
    if (sodium_memcmp(root, old_cp.root, MERKLE_HASH_BYTES) != 0) {
        printf("FAIL the export's tree at size %" PRIu64 " has another root "
               "than the old checkpoint: the log was rewritten, not only "
               "grown\n", old_cp.size);
        goto out;
    }
    if (merkle_nodes_root(tile_node, &tr, new_cp.size, root) < 0 ||
        sodium_memcmp(root, new_cp.root, MERKLE_HASH_BYTES) != 0) {
        printf("FAIL the export's tiles do not lead to its checkpoint's root; "
               "run once-audit verify\n");
        goto out;
    }
    if (old_cp.size > 0) {
        if (merkle_nodes_consistency_proof(tile_node, &tr, old_cp.size,
                                           new_cp.size, proof,
                                           &proof_len) < 0) {
            printf("FAIL cannot build the consistency proof: %s\n", tr.why);
            goto out;
        }
    } else {
        proof_len = 0;
    }
    if (merkle_verify_consistency(old_cp.size, new_cp.size, old_cp.root,
                                  new_cp.root, proof, proof_len) < 0) {
        printf("FAIL the consistency proof from %" PRIu64 " to %" PRIu64
               " does not verify\n", old_cp.size, new_cp.size);
        goto out;
    }
    printf("consistency proof: %zu hashes, verified (RFC 9162 2.1.4.2)\n",
           proof_len);
    printf("consistency: OK: the log of size %" PRIu64 " extends the one of "
           "size %" PRIu64 "\n", new_cp.size, old_cp.size);
    rc = EXIT_CLEAN;
out:
    tile_reader_free(&tr);
    export_close(&x);
    free(old_note);
    return rc;
}

/* ------------------------------------------------------------------------
 * subject: the citizen's access report
 * ---------------------------------------------------------------------- */

static void usage_subject(FILE *f)
{
    fprintf(f,
            "usage: once-audit subject DIR --audit-key FILE --type TYPE "
            "--subject ID\n"
            "\n"
            "Lists every exchange in the export about one subject (a person's\n"
            "resident ID or an enterprise's credit code) under one record\n"
            "type: when, which department, what it did, for which purpose\n"
            "and case, and whether it was granted. Leaves name subjects only\n"
            "by HMAC-SHA-256(audit key, type || 0x00 || subject), so the\n"
            "deployment's audit key file (64 hex digits, mode 0600) is\n"
            "needed. Run once-audit verify on DIR first: this command only\n"
            "reads the entries.\n");
}

static int cmd_subject(int argc, char **argv)
{
    static const struct option opts[] = {
        {"audit-key", required_argument, NULL, 'a'},
        {"type", required_argument, NULL, 't'},
        {"subject", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *audit_key = NULL, *type = NULL, *subject = NULL;
    uint8_t key[AUDIT_KEY_BYTES], hash[AUDIT_SUBJECT_HASH_BYTES];
    size_t offs[TLOG_TILE_WIDTH], lens[TLOG_TILE_WIDTH];
    uint64_t b, count, found = 0, missing = 0;
    char path[TLOG_PATH_MAX], why[96], t[32];
    export_dir x;
    checkpoint cp;
    once_error err;
    int c, rc = EXIT_CLEAN;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': audit_key = optarg; break;
        case 't': type = optarg; break;
        case 's': subject = optarg; break;
        case 'h': usage_subject(stdout); return EXIT_CLEAN;
        default: usage_subject(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !audit_key || !type || !subject) {
        usage_subject(stderr);
        return EXIT_USAGE;
    }
    if (audit_key_load(key, audit_key, &err) < 0) {
        fprintf(stderr, "once-audit: %s\n", err.message);
        return EXIT_USAGE;
    }
    audit_subject_hash(key, type, subject, hash);
    sodium_memzero(key, sizeof(key));
    if (export_open(&x, argv[optind]) < 0)
        return EXIT_PROBLEMS;
    if (checkpoint_parse_unverified((const char *)x.note, x.note_len, &cp,
                                    NULL) < 0) {
        fprintf(stderr, "once-audit: %s/checkpoint is malformed\n", x.path);
        export_close(&x);
        return EXIT_PROBLEMS;
    }
    printf("# exchanges about one %s subject in %s (tree size %" PRIu64 ")\n",
           type, x.path, cp.size);
    printf("# leaf\ttime (UTC)\tdepartment\tkind\tversion\tpurpose\tcase id\t"
           "decision\n");
    count = tlog_tile_count(cp.size, 0);
    for (b = 0; b < count; b++) {
        unsigned width = tlog_tile_width(cp.size, 0, b), j;
        uint8_t *data;
        size_t len;

        tile_path(path, "tile/entries", b, width);
        if (read_at(x.fd, path, &data, &len) < 0) {
            missing += width;
            continue;
        }
        if (split_bundle(data, len, width, TLOG_ENTRY_LENGTH_BYTES, offs,
                         lens, why, sizeof(why)) < 0) {
            fprintf(stderr, "once-audit: %s: malformed (%s)\n", path, why);
            rc = EXIT_PROBLEMS;
            free(data);
            continue;
        }
        for (j = 0; j < width; j++) {
            Once__LogLeaf *leaf =
                once__log_leaf__unpack(NULL, lens[j], data + offs[j]);

            if (leaf == NULL)
                continue;
            if (strcmp(leaf->record_type, type) == 0 &&
                leaf->subject_hash.len == sizeof(hash) &&
                memcmp(leaf->subject_hash.data, hash, sizeof(hash)) == 0) {
                format_time(leaf->time, t);
                /* Tabs separate the columns: the fields from the log are
                 * escaped so that none holds a tab or a newline. */
                printf("%" PRIu64 "\t%s\t", b * TLOG_TILE_WIDTH + j, t);
                audit_put_escaped(stdout, leaf->department);
                printf("\t%s\t%" PRIu64 "\t", kind_name((int)leaf->kind),
                       leaf->record_version);
                audit_put_escaped(stdout, leaf->purpose);
                fputc('\t', stdout);
                audit_put_escaped(stdout, leaf->case_id);
                printf("\t%s%s%s\n",
                       leaf->decision == ONCE__DECISION__DECISION_GRANTED
                           ? "GRANTED"
                           : "REFUSED",
                       leaf->error ? " " : "",
                       leaf->error ? once_error_name((int)leaf->error) : "");
                found++;
            }
            once__log_leaf__free_unpacked(leaf, NULL);
        }
        free(data);
    }
    printf("# %" PRIu64 " exchanges found", found);
    if (missing > 0)
        printf("; %" PRIu64 " leaves are not in this export", missing);
    printf("\n");
    export_close(&x);
    return rc;
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: once-audit COMMAND [ARGS]  (COMMAND --help for details)\n"
            "\n"
            "  verify DIR --key BROKER.pub     check an exported log\n"
            "  prove DIR INDEX [-o FILE]       write a tlog-proof of one leaf\n"
            "  check-proof FILE --key BROKER.pub\n"
            "                                  check a tlog-proof\n"
            "  consistency OLD_CHECKPOINT DIR --key BROKER.pub\n"
            "                                  show the log only grew\n"
            "  subject DIR --audit-key FILE --type T --subject ID\n"
            "                                  list the exchanges about one "
            "subject\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"verify", cmd_verify},       {"prove", cmd_prove},
        {"check-proof", cmd_check_proof},
        {"consistency", cmd_consistency},
        {"subject", cmd_subject},
    };
    size_t i;

    if (once_init() < 0) {
        fprintf(stderr, "once-audit: cannot initialize libsodium\n");
        return EXIT_PROBLEMS;
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_CLEAN;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "once-audit: unknown command %s\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
