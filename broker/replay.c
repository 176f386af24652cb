/*
 * replay.c - anti-replay windows per (sender, session), the answers kept
 * for retries, and the durable `replies` table.
 *
 * Why a window and not "seq must grow". Envelopes pipelined on one
 * connection are verified by several workers at once and may finish out of
 * order; a strict "above the highest" rule would refuse the slower ones. So,
 * as IPsec does (RFC 4303 3.4.3, with RFC 6479's word-ring layout), each
 * (sender, session) keeps its highest seq and a bitmap of the REPLAY_WINDOW
 * seqs at and below it. The bitmap is a ring of 64-bit words indexed by
 * seq / 64: sliding the window forward clears the words it enters, with no
 * shifting of the whole map. One spare word keeps a full REPLAY_WINDOW
 * of distinct seqs representable whatever the highest seq's bit position.
 *
 * Why check and mark in one step, after verification. A seq is marked only
 * once the envelope's signature verified (docs/PROTOCOL.md 3: a forged
 * envelope must not use up a seq), and the check and the mark happen under
 * one lock, so two copies of one envelope racing through two workers
 * cannot both be admitted.
 *
 * Retries. A client that got no answer re-sends the very same bytes. The
 * broker recognises them by (sender, session, seq) plus the SHA-256 of the
 * envelope, and answers with the original answer rather than executing the
 * envelope twice:
 *   - each session remembers, for its last REPLAY_SLOTS seqs, the digest,
 *     whether the answer is still being made (in flight: a retry is then
 *     dropped, the original answer is on its way), and a copy of the answer
 *     within a global memory budget;
 *   - every logged exchange (publishes, revocations, requests, logged
 *     refusals) also stores its answer in the `replies` table in the same
 *     LMDB transaction as its record and log leaf (writer.c), so a retry
 *     after a broker restart still gets the original answer and never
 *     stores a second version or a second leaf.
 * A seq that was used by different bytes is a replay. A seq whose bytes are
 * no longer remembered in memory is looked up in `replies` by the caller.
 *
 * Forgetting. A session idle for keep_ms is dropped. The caller passes at
 * least twice the skew window: an envelope accepted at broker time t had
 * sent_at <= t + skew, so any copy of it arriving after t + 2 * skew fails
 * the clock check, and the session's window is no longer needed to refuse
 * it. Restarting the broker forgets all windows; every logged exchange is
 * then protected by the durable table (PROTOCOL.md 6.3).
 *
 * The table's key starts with the envelope's sent_at: (sent_at_ms u64be,
 * sender, 0x00, session u64be, seq u64be). A retry is the same bytes, so
 * it has the same sent_at and finds its entry. Two things follow from
 * putting the time first:
 *   - Retention. A copy of an envelope passes the clock check only while
 *     sent_at >= now - skew (server.c checks the clock before it consults
 *     the window or this table), so an entry whose sent_at is older than
 *     that can never be asked for again. The writer deletes, a bounded
 *     number per group commit and more than a group stores, the entries at
 *     the start of the table whose sent_at is below now - skew - margin
 *     (replay_reply_cutoff); the margin (REPLAY_REPLY_MARGIN_MS) covers the
 *     wall clock stepping back between a worker's check and the prune. The
 *     table stays about one skew window of traffic long, and a broker
 *     restarted after days off drains the expired entries over its next
 *     commits instead of stalling. Raising skew_seconds across a restart by
 *     more than the margin would let copies of envelopes whose answers were
 *     already deleted pass the clock check again: raise it, if ever, by
 *     little, or wait the old skew window out first.
 *   - Cheap commits. Senders' clocks agree to within a few seconds, so new
 *     entries all land near the end of the table, in a handful of pages. A
 *     key led by the sender would scatter each group commit over a page
 *     per active session, and LMDB writes every page a transaction
 *     touches: on once-bench's 32 sessions that was most of the bytes each
 *     fsync wrote.
 * The price: after a restart, a different envelope that reuses a (session,
 * seq) of an answered one with another sent_at is no longer refused as
 * REPLAY by the table (within a run the window refuses it). Only the
 * department itself can sign such an envelope, so it cannot be used
 * against the department; it is executed and logged as the new exchange
 * it is.
 *
 * Concurrency. Sessions live in STRIPES independent hash tables, each with
 * its own mutex; a session's stripe comes from a keyed SipHash of (sender,
 * session), so clients cannot aim all their sessions at one stripe or one
 * bucket. Workers touching different sessions rarely meet on a lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "replay.h"

#define STRIPES 64
#define WINDOW_WORDS (REPLAY_WINDOW / 64 + 1)
#define REPLAY_SLOTS 32
/* Digests are compared on 128 bits in memory: the only party that could
 * make two envelopes collide is the sender itself, on its own session. */
#define SLOT_DIGEST_BYTES 16
/* An answer larger than this is not kept in memory; a retry of it is
 * answered afresh (requests) or from the replies table (publishes). */
#define MAX_CACHED_ANSWER (256 * 1024)
#define INITIAL_BUCKETS 16

enum slot_state { SLOT_EMPTY = 0, SLOT_IN_FLIGHT, SLOT_ANSWERED };

typedef struct slot {
    uint64_t seq;
    uint8_t digest[SLOT_DIGEST_BYTES];
    uint8_t state;
    uint8_t kind;
    uint32_t len;
    uint8_t *body;
} slot;

typedef struct session_state {
    struct session_state *next;
    uint64_t hash;
    uint64_t session;
    uint64_t highest;
    uint64_t last_seen_ms;
    uint64_t window[WINDOW_WORDS];
    slot slots[REPLAY_SLOTS];
    char sender[ONCE_MAX_NAME + 1];
} session_state;

typedef struct stripe {
    pthread_mutex_t lock;
    session_state **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
    uint64_t last_sweep_ms;
} stripe;

struct replay {
    stripe stripes[STRIPES];
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    uint64_t keep_ms;
    size_t max_sessions;
    size_t max_cached_bytes;
    atomic_size_t sessions;
    atomic_size_t cached_bytes;
};

int replay_create(replay **out, uint64_t keep_ms, size_t max_sessions,
                  size_t max_cached_bytes, once_error *err)
{
    replay *r;
    size_t i;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY,
                              "out of memory for the replay windows");
    randombytes_buf(r->hash_key, sizeof(r->hash_key));
    r->keep_ms = keep_ms;
    r->max_sessions = max_sessions;
    r->max_cached_bytes = max_cached_bytes;
    for (i = 0; i < STRIPES; i++) {
        stripe *st = &r->stripes[i];

        st->buckets = calloc(INITIAL_BUCKETS, sizeof(*st->buckets));
        if (st->buckets == NULL) {
            replay_destroy(r);
            return once_error_set(err, ONCE_ERR_NO_MEMORY,
                                  "out of memory for the replay windows");
        }
        st->bucket_count = INITIAL_BUCKETS;
        pthread_mutex_init(&st->lock, NULL);
    }
    *out = r;
    return 0;
}

static void slot_drop_body(replay *r, slot *sl)
{
    if (sl->body != NULL) {
        atomic_fetch_sub(&r->cached_bytes, sl->len);
        free(sl->body);
        sl->body = NULL;
    }
    sl->len = 0;
}

static void session_free(replay *r, session_state *ss)
{
    size_t i;

    for (i = 0; i < REPLAY_SLOTS; i++)
        slot_drop_body(r, &ss->slots[i]);
    free(ss);
}

void replay_destroy(replay *r)
{
    size_t i, b;

    if (r == NULL)
        return;
    for (i = 0; i < STRIPES; i++) {
        stripe *st = &r->stripes[i];

        if (st->buckets == NULL)
            continue;
        for (b = 0; b < st->bucket_count; b++) {
            session_state *ss = st->buckets[b], *next;

            for (; ss != NULL; ss = next) {
                next = ss->next;
                session_free(r, ss);
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->lock);
    }
    free(r);
}

size_t replay_session_count(replay *r)
{
    return atomic_load(&r->sessions);
}

static uint64_t session_hash(const replay *r, const char *sender,
                             uint64_t session)
{
    uint8_t input[ONCE_MAX_NAME + 1 + 8];
    uint8_t out[crypto_shorthash_BYTES];
    size_t len = strnlen(sender, ONCE_MAX_NAME);
    uint64_t h;

    memcpy(input, sender, len);
    input[len] = 0;
    memcpy(input + len + 1, &session, 8);
    crypto_shorthash(out, input, len + 1 + 8, r->hash_key);
    memcpy(&h, out, sizeof(h));
    return h;
}

static stripe *stripe_of(replay *r, uint64_t hash)
{
    return &r->stripes[hash % STRIPES];
}

static size_t bucket_of(const stripe *st, uint64_t hash)
{
    return (size_t)(hash / STRIPES) & (st->bucket_count - 1);
}

static session_state *find_session(stripe *st, uint64_t hash,
                                   const char *sender, uint64_t session)
{
    session_state *ss;

    for (ss = st->buckets[bucket_of(st, hash)]; ss != NULL; ss = ss->next)
        if (ss->hash == hash && ss->session == session &&
            strcmp(ss->sender, sender) == 0)
            return ss;
    return NULL;
}

/* Drops the stripe's sessions idle for keep_ms. Runs at most a few times
 * per keep period per stripe, under the stripe's lock. */
static void sweep(replay *r, stripe *st, uint64_t now_ms)
{
    size_t b;

    st->last_sweep_ms = now_ms;
    for (b = 0; b < st->bucket_count; b++) {
        session_state **link = &st->buckets[b];

        while (*link != NULL) {
            session_state *ss = *link;

            if (now_ms > ss->last_seen_ms &&
                now_ms - ss->last_seen_ms > r->keep_ms) {
                *link = ss->next;
                session_free(r, ss);
                st->count--;
                atomic_fetch_sub(&r->sessions, 1);
            } else {
                link = &ss->next;
            }
        }
    }
}

/* Doubles the bucket array when chains grow past two on average. Failure
 * to grow only makes chains longer. */
static void maybe_grow(stripe *st)
{
    session_state **grown;
    size_t n = st->bucket_count * 2, b;

    if (st->count <= st->bucket_count * 2)
        return;
    grown = calloc(n, sizeof(*grown));
    if (grown == NULL)
        return;
    for (b = 0; b < st->bucket_count; b++) {
        session_state *ss = st->buckets[b], *next;

        for (; ss != NULL; ss = next) {
            size_t nb = (size_t)(ss->hash / STRIPES) & (n - 1);

            next = ss->next;
            ss->next = grown[nb];
            grown[nb] = ss;
        }
    }
    free(st->buckets);
    st->buckets = grown;
    st->bucket_count = n;
}

static session_state *add_session(replay *r, stripe *st, uint64_t hash,
                                  const char *sender, uint64_t session,
                                  uint64_t now_ms)
{
    session_state *ss;
    size_t b;

    if (atomic_load(&r->sessions) >= r->max_sessions) {
        sweep(r, st, now_ms);
        if (atomic_load(&r->sessions) >= r->max_sessions)
            return NULL;
    }
    ss = calloc(1, sizeof(*ss));
    if (ss == NULL)
        return NULL;
    ss->hash = hash;
    ss->session = session;
    snprintf(ss->sender, sizeof(ss->sender), "%s", sender);
    maybe_grow(st);
    b = bucket_of(st, hash);
    ss->next = st->buckets[b];
    st->buckets[b] = ss;
    st->count++;
    atomic_fetch_add(&r->sessions, 1);
    return ss;
}

static bool window_test(const session_state *ss, uint64_t seq)
{
    return (ss->window[(seq / 64) % WINDOW_WORDS] >> (seq % 64)) & 1u;
}

static void window_mark(session_state *ss, uint64_t seq)
{
    if (seq > ss->highest) {
        uint64_t w, from = ss->highest / 64 + 1, to = seq / 64;

        /* Words the window slides into held seqs a whole ring ago. */
        if (to - from >= WINDOW_WORDS)
            from = to - WINDOW_WORDS + 1;
        for (w = from; w <= to; w++)
            ss->window[w % WINDOW_WORDS] = 0;
        ss->highest = seq;
    }
    ss->window[(seq / 64) % WINDOW_WORDS] |= (uint64_t)1 << (seq % 64);
}

static replay_verdict copy_answer(const slot *sl, replay_answer *answer)
{
    answer->kind = sl->kind;
    answer->body = NULL;
    answer->len = 0;
    if (sl->body != NULL) {
        answer->body = malloc(sl->len > 0 ? sl->len : 1);
        if (answer->body != NULL) {
            memcpy(answer->body, sl->body, sl->len);
            answer->len = sl->len;
        }
    }
    return REPLAY_ANSWERED;
}

replay_verdict replay_admit(replay *r, const char *sender, uint64_t session,
                            uint64_t seq, const uint8_t digest[32],
                            uint64_t now_ms, replay_answer *answer)
{
    uint64_t hash = session_hash(r, sender, session);
    stripe *st = stripe_of(r, hash);
    replay_verdict verdict;
    session_state *ss;
    slot *sl;

    answer->kind = 0;
    answer->body = NULL;
    answer->len = 0;
    pthread_mutex_lock(&st->lock);
    if (now_ms > st->last_sweep_ms &&
        now_ms - st->last_sweep_ms > r->keep_ms / 4)
        sweep(r, st, now_ms);
    ss = find_session(st, hash, sender, session);
    if (ss == NULL) {
        ss = add_session(r, st, hash, sender, session, now_ms);
        if (ss == NULL) {
            verdict = REPLAY_NO_ROOM;
            goto out;
        }
    }
    ss->last_seen_ms = now_ms;
    sl = &ss->slots[seq % REPLAY_SLOTS];

    if (seq <= ss->highest &&
        (ss->highest - seq >= REPLAY_WINDOW || window_test(ss, seq))) {
        if (sl->state == SLOT_EMPTY || sl->seq != seq)
            verdict = REPLAY_UNKNOWN;
        else if (memcmp(sl->digest, digest, SLOT_DIGEST_BYTES) != 0)
            verdict = REPLAY_REFUSED;
        else if (sl->state == SLOT_IN_FLIGHT)
            verdict = REPLAY_IN_FLIGHT;
        else
            verdict = copy_answer(sl, answer);
        goto out;
    }

    window_mark(ss, seq);
    slot_drop_body(r, sl);
    sl->seq = seq;
    memcpy(sl->digest, digest, SLOT_DIGEST_BYTES);
    sl->state = SLOT_IN_FLIGHT;
    sl->kind = 0;
    verdict = REPLAY_ADMITTED;
out:
    pthread_mutex_unlock(&st->lock);
    return verdict;
}

/* Takes len bytes of the memory budget for kept answers, if there are. */
static bool reserve_cache(replay *r, size_t len)
{
    if (atomic_fetch_add(&r->cached_bytes, len) + len <= r->max_cached_bytes)
        return true;
    atomic_fetch_sub(&r->cached_bytes, len);
    return false;
}

void replay_finish(replay *r, const char *sender, uint64_t session,
                   uint64_t seq, int kind, const uint8_t *body, size_t len)
{
    uint64_t hash = session_hash(r, sender, session);
    stripe *st = stripe_of(r, hash);
    session_state *ss;
    slot *sl;

    pthread_mutex_lock(&st->lock);
    ss = find_session(st, hash, sender, session);
    if (ss == NULL)
        goto out; /* idle long enough to be forgotten */
    sl = &ss->slots[seq % REPLAY_SLOTS];
    if (sl->seq != seq || sl->state != SLOT_IN_FLIGHT)
        goto out; /* a later seq took the slot */
    sl->state = SLOT_ANSWERED;
    sl->kind = (uint8_t)kind;
    if (len > MAX_CACHED_ANSWER || !reserve_cache(r, len))
        goto out; /* a retry is answered from the table or afresh */
    sl->body = malloc(len > 0 ? len : 1);
    if (sl->body == NULL) {
        atomic_fetch_sub(&r->cached_bytes, len);
        goto out;
    }
    if (len > 0)
        memcpy(sl->body, body, len);
    sl->len = (uint32_t)len;
out:
    pthread_mutex_unlock(&st->lock);
}

/* ---- the durable table `replies` -------------------------------------- */

/* Key: sent_at_ms u64be, sender, 0x00, session u64be, seq u64be. */
#define REPLY_KEY_MAX (8 + ONCE_MAX_NAME + 1 + 8 + 8)

/* Builds the key of an answer in buf and points key at it. */
static int reply_key(uint8_t buf[REPLY_KEY_MAX], MDB_val *key,
                     uint64_t sent_at_ms, const char *sender,
                     uint64_t session, uint64_t seq, once_error *err)
{
    size_t len = strnlen(sender, ONCE_MAX_NAME + 1);

    if (len == 0 || len > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a reply needs a sender of 1 to %d bytes",
                              ONCE_MAX_NAME);
    store_put_u64be(buf, sent_at_ms);
    memcpy(buf + 8, sender, len);
    buf[8 + len] = 0;
    store_put_u64be(buf + 8 + len + 1, session);
    store_put_u64be(buf + 8 + len + 9, seq);
    key->mv_size = 8 + len + 17;
    key->mv_data = buf;
    return 0;
}

int replay_reply_put(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                     const char *sender, uint64_t session, uint64_t seq,
                     const uint8_t digest[32], int kind, const uint8_t *body,
                     size_t len, once_error *err)
{
    Once__StoredReply m = ONCE__STORED_REPLY__INIT;
    uint8_t key_bytes[REPLY_KEY_MAX];
    MDB_val key, val;
    int rc;

    if ((rc = reply_key(key_bytes, &key, sent_at_ms, sender, session, seq,
                        err)) < 0)
        return rc;
    m.envelope_digest.data = (uint8_t *)digest;
    m.envelope_digest.len = 32;
    m.kind = (Once__Kind)kind;
    m.body.data = (uint8_t *)body;
    m.body.len = len;
    val.mv_size = once__stored_reply__get_packed_size(&m);
    val.mv_data = NULL;
    /* Reserve the value in the map and encode straight into it. */
    rc = mdb_put(txn, s->replies, &key, &val, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the answer of an exchange", err);
    once__stored_reply__pack(&m, val.mv_data);
    return 0;
}

int replay_reply_find(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                      const char *sender, uint64_t session, uint64_t seq,
                      const uint8_t digest[32], ProtobufCAllocator *alloc,
                      Once__StoredReply **out, once_error *err)
{
    uint8_t key_bytes[REPLY_KEY_MAX];
    Once__StoredReply *m;
    MDB_val key, val;
    int rc;

    *out = NULL;
    if ((rc = reply_key(key_bytes, &key, sent_at_ms, sender, session, seq,
                        err)) < 0)
        return rc;
    rc = mdb_get(txn, s->replies, &key, &val);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no stored answer for this envelope");
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read a stored answer", err);
    m = once__stored_reply__unpack(alloc, val.mv_size, val.mv_data);
    if (m == NULL)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored answer does not decode");
    if (m->envelope_digest.len != 32 ||
        memcmp(m->envelope_digest.data, digest, 32) != 0) {
        once__stored_reply__free_unpacked(m, alloc);
        return 1;
    }
    *out = m;
    return 0;
}

/* Keys of the layout before sent_at led them began with the sender's name:
 * read as a time, printable ASCII is past the year 100,000. */
#define OLD_LAYOUT_MIN_MS UINT64_C(0x2000000000000000)

int replay_replies_upgrade(MDB_txn *txn, const store *s, size_t *dropped,
                           once_error *err)
{
    MDB_cursor *cursor;
    MDB_val key, val;
    MDB_stat st;
    int rc;

    *dropped = 0;
    rc = mdb_cursor_open(txn, s->replies, &cursor);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot walk the stored answers", err);
    rc = mdb_cursor_get(cursor, &key, &val, MDB_LAST);
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read the stored answers", err);
    if (key.mv_size >= 8 && store_get_u64be(key.mv_data) < OLD_LAYOUT_MIN_MS)
        return 0;
    /* Entries of the old layout can be neither found nor pruned: empty
     * the table, as its answers were kept only for minutes anyway. */
    if ((rc = mdb_stat(txn, s->replies, &st)) != MDB_SUCCESS ||
        (rc = mdb_drop(txn, s->replies, 0)) != MDB_SUCCESS)
        return store_error(rc, "cannot empty the stored answers", err);
    *dropped = st.ms_entries;
    return 0;
}

uint64_t replay_reply_cutoff(uint64_t now_ms, uint64_t skew_ms)
{
    uint64_t keep_ms = skew_ms + REPLAY_REPLY_MARGIN_MS;

    /* A clock reading near the epoch (a board without an RTC, before NTP)
     * keeps everything rather than wrapping around to delete everything. */
    return now_ms > keep_ms ? now_ms - keep_ms : 0;
}

bool replay_reply_expired(MDB_txn *txn, const store *s, uint64_t before_ms)
{
    MDB_cursor *cursor;
    MDB_val key, val;
    bool expired;

    if (mdb_cursor_open(txn, s->replies, &cursor) != MDB_SUCCESS)
        return false;
    expired = mdb_cursor_get(cursor, &key, &val, MDB_FIRST) == MDB_SUCCESS &&
              (key.mv_size < 8 || store_get_u64be(key.mv_data) < before_ms);
    mdb_cursor_close(cursor);
    return expired;
}

int replay_reply_prune(MDB_txn *txn, const store *s, uint64_t before_ms,
                       size_t max, size_t *pruned, once_error *err)
{
    MDB_cursor *cursor;
    MDB_val key, val;
    size_t n = 0;
    int rc, ret = 0;

    if (pruned != NULL)
        *pruned = 0;
    rc = mdb_cursor_open(txn, s->replies, &cursor);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot walk the stored answers", err);
    while (n < max) {
        /* The oldest entry left is always the first one. */
        rc = mdb_cursor_get(cursor, &key, &val, MDB_FIRST);
        if (rc == MDB_NOTFOUND)
            break;
        if (rc != MDB_SUCCESS) {
            ret = store_error(rc, "cannot read the stored answers", err);
            goto out;
        }
        if (key.mv_size < 8 || store_get_u64be(key.mv_data) >= before_ms)
            break;
        rc = mdb_cursor_del(cursor, 0);
        if (rc != MDB_SUCCESS) {
            ret = store_error(rc, "cannot delete an expired stored answer",
                              err);
            goto out;
        }
        n++;
    }
out:
    mdb_cursor_close(cursor);
    if (pruned != NULL)
        *pruned = n;
    return ret;
}
