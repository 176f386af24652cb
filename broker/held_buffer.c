/*
 * held_buffer.c - which records each department was granted, indexed for
 * the SCOPE_HELD subscriptions (docs/PROTOCOL.md 4.9) off the request's
 * commit.
 *
 * `notice_held` (subscriptions.c) holds (type, subject hash, department)
 * for every copy a granted request gave. It is derived data: a granted
 * request leaf of the log (docs/AUDIT.md: kind REQUEST, decision GRANTED)
 * carries the type, the keyed subject hash and the requesting department,
 * the same three values. So it need not be durable before the answer,
 * and putting a department's first copy of a record into the table in
 * the request's own transaction cost a random B-tree page in the commit
 * (docs/PERFORMANCE.md). Instead the writer keeps the entries of
 * committed grants here, each once, and puts them into the table in key
 * order, where neighbouring keys share their pages and one cursor walks
 * the tree once instead of descending it for each:
 *
 *   - inside the transaction of a group that makes a notice event (a
 *     granted publish or revoke), before its own work: an event at leaf
 *     L and every entry of the leaves before L become visible in the same
 *     commit, so whoever reads the event (a pull, the fan-out) sees every
 *     copy granted before it. That group puts its own requests' entries
 *     directly too. Only events are matched against the table
 *     (subscriptions_scan); a subscribe reads none of it.
 *   - in a transaction of its own, never inside a request-only group:
 *     HELD_FLUSH_AFTER_MS after the first entry in memory, at once when
 *     HELD_FLUSH_AT are, and when the stopping writer leaves.
 *
 * When a group's entries might not fit, that group puts them directly, as
 * before, and a flush of its own follows its answers: memory stays
 * bounded and nothing waits for it.
 *
 * The mark. Each flush also stores `held_through`, the number of leaves
 * whose entries are all in the table. A kill -9 loses what was in memory,
 * never the leaves: at start, before the writer takes a job, held_recover
 * reads the leaves from the mark to the end of the log and puts the
 * entries of the granted requests (a few seconds of traffic at most: the
 * buffer is flushed at least every HELD_FLUSH_AFTER_MS while requests are
 * granted, and the mark written at least every HELD_MARK_LAG_MAX leaves
 * otherwise). A home of an earlier version has no mark, and needs none:
 * that version put each entry in the transaction of its leaf, so its table
 * is complete as of its last commit, and the mark starts at the log's
 * size. A table ahead of its mark (a flush that committed entries of
 * leaves above it) is harmless: the puts are idempotent.
 *
 * Tables: `notice_held` (subscriptions.c) and `notice_marks`
 * "held_through" -> u64be, both opened by subscriptions_open.
 */
#include "held_buffer.h"

#include <stdlib.h>
#include <string.h>

#include "once.pb-c.h"

#define MARK_KEY "held_through"
/* Open addressing over entries: twice as many slots, a power of two. */
#define SLOTS (2 * HELD_BUFFER_MAX)
/* Leaves the start reads between two checks of the room left. */
#define REPLAY_CHUNK 1024

typedef struct held_entry {
    uint32_t slot;             /* its slot, cleared when flushed */
    uint8_t len;
    uint8_t key[SUBSCRIPTIONS_HELD_KEY_MAX];
} held_entry;

struct held_buffer {
    held_entry *entries;       /* HELD_BUFFER_MAX */
    const held_entry **sorted; /* HELD_BUFFER_MAX, for a flush */
    uint32_t *slots;           /* SLOTS: entry index + 1, 0 free */
    size_t n;
    uint64_t first_ms;         /* when the first entry came */
    uint64_t retry_ms;         /* no flush of its own before this */
    uint64_t mark;             /* as last stored */
    uint64_t committed;        /* the log's size after the last commit */
    bool mark_known;
};

int held_buffer_new(held_buffer **out, once_error *err)
{
    held_buffer *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (b != NULL) {
        b->entries = calloc(HELD_BUFFER_MAX, sizeof(*b->entries));
        b->sorted = calloc(HELD_BUFFER_MAX, sizeof(*b->sorted));
        b->slots = calloc(SLOTS, sizeof(*b->slots));
    }
    if (b == NULL || b->entries == NULL || b->sorted == NULL ||
        b->slots == NULL) {
        held_buffer_free(b);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    *out = b;
    return 0;
}

void held_buffer_free(held_buffer *b)
{
    if (b == NULL)
        return;
    free(b->entries);
    free(b->sorted);
    free(b->slots);
    free(b);
}

size_t held_buffer_count(const held_buffer *b)
{
    return b->n;
}

bool held_buffer_room(const held_buffer *b, size_t n)
{
    return n <= HELD_BUFFER_MAX - b->n;
}

/* FNV-1a: the keys hold a keyed hash already, so any spread will do. */
static size_t slot_of(const uint8_t *k, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32)) & (SLOTS - 1);
}

int held_buffer_add(held_buffer *b, const char *type,
                    const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                    const char *dept, uint64_t now_ms, once_error *err)
{
    uint8_t k[SUBSCRIPTIONS_HELD_KEY_MAX];
    size_t len = subscriptions_held_key(k, type, hash, dept), s;
    held_entry *e;

    if (len == 0)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "a held record's "
                              "names are over their limits");
    for (s = slot_of(k, len); b->slots[s] != 0; s = (s + 1) & (SLOTS - 1)) {
        e = &b->entries[b->slots[s] - 1];
        if (e->len == len && memcmp(e->key, k, len) == 0)
            return 0; /* in memory already */
    }
    if (b->n == HELD_BUFFER_MAX)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "the records held "
                              "in memory are at their bound");
    e = &b->entries[b->n];
    e->slot = (uint32_t)s;
    e->len = (uint8_t)len;
    memcpy(e->key, k, len);
    if (b->n == 0)
        b->first_ms = now_ms;
    b->slots[s] = (uint32_t)++b->n;
    return 0;
}

/* LMDB's default order of keys: bytes, then length. */
static int key_order(const void *a, const void *b)
{
    const held_entry *x = *(const held_entry *const *)a;
    const held_entry *y = *(const held_entry *const *)b;
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (int)x->len - (int)y->len;
}

int held_mark_put(MDB_txn *txn, const subscriptions *t, uint64_t through,
                  once_error *err)
{
    uint8_t v[8];
    MDB_val key = { sizeof(MARK_KEY) - 1, MARK_KEY }, val = { sizeof(v), v };

    store_put_u64be(v, through);
    return store_error(mdb_put(txn, t->marks, &key, &val, 0),
                       "cannot store the mark of the records held", err);
}

int held_mark_get(MDB_txn *txn, const subscriptions *t, uint64_t *through,
                  bool *found, once_error *err)
{
    MDB_val key = { sizeof(MARK_KEY) - 1, MARK_KEY }, val;
    int rc = mdb_get(txn, t->marks, &key, &val);

    *through = 0;
    *found = false;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read the mark of the records held",
                           err);
    if (val.mv_size != 8)
        return once_error_set(err, ONCE_ERR_INTERNAL, "the mark of the "
                              "records held is damaged");
    *through = store_get_u64be(val.mv_data);
    *found = true;
    return 0;
}

int held_buffer_flush(MDB_txn *txn, const subscriptions *t, held_buffer *b,
                      once_error *err)
{
    MDB_val key, val = { 0, "" };
    MDB_cursor *cur;
    size_t i;
    int rc = MDB_SUCCESS;

    if (b->n == 0)
        return 0;
    for (i = 0; i < b->n; i++)
        b->sorted[i] = &b->entries[i];
    qsort(b->sorted, b->n, sizeof(*b->sorted), key_order);
    rc = mdb_cursor_open(txn, t->held, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot index the records held", err);
    /* In order, LMDB finds a key that falls on the cursor's page there,
     * without descending from the root; one that exists is left
     * untouched (subscriptions_held_put). */
    for (i = 0; i < b->n; i++) {
        key.mv_size = b->sorted[i]->len;
        key.mv_data = (void *)b->sorted[i]->key;
        rc = mdb_cursor_put(cur, &key, &val, MDB_NOOVERWRITE);
        if (rc != MDB_SUCCESS && rc != MDB_KEYEXIST)
            break;
        rc = MDB_SUCCESS;
    }
    mdb_cursor_close(cur);
    return store_error(rc, "cannot index the records held", err);
}

void held_buffer_flushed(held_buffer *b, uint64_t through)
{
    size_t i;

    /* Only the slots in use: an event's group flushes a few entries in
     * the writer's transaction, and clearing all SLOTS (128 KiB) each
     * time would cost more than putting them. */
    for (i = 0; i < b->n; i++)
        b->slots[b->entries[i].slot] = 0;
    b->n = 0;
    b->mark = through;
    b->mark_known = true;
    if (b->committed < through)
        b->committed = through;
}

void held_buffer_defer(held_buffer *b, uint64_t now_ms)
{
    b->retry_ms = now_ms < UINT64_MAX - HELD_FLUSH_AFTER_MS
                      ? now_ms + HELD_FLUSH_AFTER_MS
                      : UINT64_MAX;
}

bool held_buffer_pending(const held_buffer *b)
{
    return b->n > 0 || b->committed > b->mark;
}

void held_buffer_committed(held_buffer *b, uint64_t tree_size)
{
    b->committed = tree_size;
    if (!b->mark_known) {
        /* The start stored it at the log's size before the writer ran. */
        b->mark = tree_size;
        b->mark_known = true;
    }
}

long held_buffer_wait(const held_buffer *b, uint64_t now_ms)
{
    uint64_t due;

    if (b->n == 0 && b->committed - b->mark < HELD_MARK_LAG_MAX)
        return -1;
    if (b->n >= HELD_FLUSH_AT || b->committed - b->mark >= HELD_MARK_LAG_MAX)
        due = now_ms;
    else
        due = b->first_ms + HELD_FLUSH_AFTER_MS;
    if (due < b->retry_ms)
        due = b->retry_ms;
    return due > now_ms ? (long)(due - now_ms) : 0;
}

/* ---- the repair at start ------------------------------------------------ */

typedef struct replay_arg {
    held_buffer *b;
    size_t entries;
    once_error *err;
} replay_arg;

/* Collects the entry of a granted request leaf; leaves that do not decode
 * (none the broker wrote) or of other kinds give none. */
static int replay_leaf(uint64_t index, const MDB_val *leaf, void *arg)
{
    replay_arg *r = arg;
    Once__LogLeaf *l = once__log_leaf__unpack(NULL, leaf->mv_size,
                                              leaf->mv_data);
    int rc = 0;

    (void)index;
    if (l == NULL)
        return 0;
    if (l->kind == ONCE__KIND__KIND_REQUEST &&
        l->decision == ONCE__DECISION__DECISION_GRANTED &&
        l->subject_hash.len == AUDIT_SUBJECT_HASH_BYTES) {
        rc = held_buffer_add(r->b, l->record_type, l->subject_hash.data,
                             l->department, 0, r->err);
        r->entries++;
    }
    once__log_leaf__free_unpacked(l, NULL);
    return rc;
}

int held_recover(const store *db, const auditlog *log,
                 const subscriptions *t, uint64_t *replayed, size_t *entries,
                 bool *had_mark, once_error *err)
{
    held_buffer *b = NULL;
    replay_arg r = { NULL, 0, err };
    uint64_t from, size, to, end;
    MDB_txn *txn;
    bool found;
    int rc;

    *replayed = 0;
    *entries = 0;
    *had_mark = true;
    if ((rc = held_buffer_new(&b, err)) < 0)
        return rc;
    r.b = b;
    do {
        if ((rc = store_begin(db, 0, &txn, err)) < 0)
            break;
        rc = held_mark_get(txn, t, &from, &found, err);
        if (rc >= 0)
            rc = auditlog_size(txn, log, &size, err);
        if (rc >= 0 && !found) {
            *had_mark = false;
            from = size; /* complete as of its last commit: see above */
        }
        /* Chunks of REPLAY_CHUNK leaves, each of which fits in memory
         * (one entry a leaf at most). */
        for (to = from; rc >= 0 && to < size &&
                        to - from < HELD_REPLAY_BATCH &&
                        held_buffer_room(b, REPLAY_CHUNK);
             to = end) {
            end = size - to < REPLAY_CHUNK ? size : to + REPLAY_CHUNK;
            rc = auditlog_leaf_each(txn, log, to, end, replay_leaf, &r, err);
        }
        if (rc >= 0 && (to != from || !found)) {
            rc = held_buffer_flush(txn, t, b, err);
            if (rc >= 0)
                rc = held_mark_put(txn, t, to, err);
            if (rc >= 0)
                rc = store_commit(txn, err); /* frees txn either way */
            else
                mdb_txn_abort(txn);
        } else {
            mdb_txn_abort(txn);
        }
        if (rc < 0)
            break;
        held_buffer_flushed(b, to);
        *replayed += to - from;
    } while (to < size);
    *entries = r.entries;
    held_buffer_free(b);
    return rc < 0 ? rc : 0;
}
