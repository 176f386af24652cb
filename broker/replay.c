/*
 * replay.c - anti-replay windows per (sender, session), the envelopes in
 * flight and the answers kept for retries, with per-department limits.
 * The durable `replies` table is replies.c.
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
 *   - each session lists every envelope it has in flight (admitted, answer
 *     not yet sent) with its digest: a copy of one is dropped, the
 *     original answer is on its way and answers both (PROTOCOL.md 6.3);
 *   - each session keeps, for its last REPLAY_SLOTS answered seqs, the
 *     digest and a copy of the answer within a global memory budget;
 *   - every logged exchange (publishes, revocations, requests, logged
 *     refusals) also stores its answer in the `replies` table in the same
 *     LMDB transaction as its record and log leaf (writer.c), so a retry
 *     after a broker restart still gets the original answer and never
 *     stores a second version or a second leaf.
 * The in-flight list is apart from the answer slots because a session may
 * have any number of envelopes in flight: when the slots also marked
 * flights, a session with more than REPLAY_SLOTS in flight saw a later seq
 * take the slot of one still being committed, and a copy of that one,
 * known neither in memory nor yet in the table, was refused REPLAY for a
 * publish that was stored, and the refusal logged as an extra leaf (issue
 * 7). An envelope leaves the list only in replay_finish, which the writer
 * calls after its commit, so from then on the table has its answer, or in
 * replay_release, when nothing was done and there is no answer to keep.
 *
 * Sharing fairly (DESIGN.md). Sessions and envelopes in flight are counted
 * per department, each under its own limit, besides the table's overall
 * bound on sessions (memory). A department at its limit is refused
 * (REPLAY_OVER_SESSIONS, REPLAY_OVER_IN_FLIGHT; nothing is marked, so the
 * same bytes may be sent again later); the others go on. A department
 * filling the table with fresh session ids therefore only locks itself
 * out. Before a session is refused for want of room, every stripe is swept
 * of its idle sessions (not only the one the session falls in), at most
 * once a second so that refusals stay cheap.
 * A seq that was used by different bytes is a replay. A seq whose bytes are
 * no longer remembered in memory is looked up in `replies` by the caller.
 * An answer saying the broker could not act (INTERNAL, STORAGE_FULL,
 * UNAVAILABLE: nothing was done) is not one to keep: the caller ends such
 * a flight with replay_release instead of replay_finish, the slot marks
 * the seq released, and the same bytes are admitted again while the slot
 * lasts, so that retry can succeed.
 *
 * Forgetting. A session idle for keep_ms is dropped. The caller passes at
 * least twice the skew window: an envelope accepted at broker time t had
 * sent_at <= t + skew, so any copy of it arriving after t + 2 * skew fails
 * the clock check, and the session's window is no longer needed to refuse
 * it. Restarting the broker forgets all windows; every logged exchange is
 * then protected by the durable table (PROTOCOL.md 6.3).
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
#define DEPARTMENT_BUCKETS 64
/* A session's list of envelopes in flight starts this long, and is freed
 * when it empties above it. */
#define INITIAL_FLIGHTS 8
/* A department over its session limit makes the table sweep every stripe,
 * at most this often: each refusal would otherwise cost a walk over every
 * session, and what a sweep frees only changes with time. */
#define FULL_SWEEP_INTERVAL_MS 1000

/* An answered envelope, kept for a retry. */
typedef struct slot {
    uint64_t seq;
    uint8_t digest[SLOT_DIGEST_BYTES];
    bool answered;
    bool released;  /* answered with a failure: the same bytes may retry */
    uint8_t kind;
    uint32_t len;
    uint8_t *body; /* NULL when not kept */
} slot;

/* An admitted envelope whose answer is being made. */
typedef struct flight {
    uint64_t seq;
    uint8_t digest[SLOT_DIGEST_BYTES];
} flight;

/* What one department holds. Counted with atomics, as its sessions live
 * in every stripe; entries live as long as the table. */
typedef struct department_usage {
    struct department_usage *next;
    atomic_size_t sessions;
    atomic_size_t in_flight;
    char sender[ONCE_MAX_NAME + 1];
} department_usage;

typedef struct session_state {
    struct session_state *next;
    uint64_t hash;
    uint64_t session;
    uint64_t highest;
    uint64_t last_seen_ms;
    uint64_t window[WINDOW_WORDS];
    department_usage *dept;
    flight *flights;
    uint32_t flight_count;
    uint32_t flight_cap;
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
    pthread_mutex_t departments_lock;
    department_usage *departments[DEPARTMENT_BUCKETS];
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    replay_limits limits;
    atomic_size_t sessions;
    atomic_size_t cached_bytes;
    _Atomic uint64_t last_full_sweep_ms;
};

int replay_create(replay **out, const replay_limits *limits, once_error *err)
{
    replay *r;
    size_t i;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY,
                              "out of memory for the replay windows");
    randombytes_buf(r->hash_key, sizeof(r->hash_key));
    r->limits = *limits;
    pthread_mutex_init(&r->departments_lock, NULL);
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

/* Frees a session and takes it, with its envelopes in flight, off its
 * department's and the table's counts. */
static void session_free(replay *r, session_state *ss)
{
    size_t i;

    for (i = 0; i < REPLAY_SLOTS; i++)
        slot_drop_body(r, &ss->slots[i]);
    atomic_fetch_sub(&ss->dept->in_flight, ss->flight_count);
    atomic_fetch_sub(&ss->dept->sessions, 1);
    atomic_fetch_sub(&r->sessions, 1);
    free(ss->flights);
    free(ss);
}

void replay_destroy(replay *r)
{
    department_usage *d, *next_dept;
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
    for (b = 0; b < DEPARTMENT_BUCKETS; b++)
        for (d = r->departments[b]; d != NULL; d = next_dept) {
            next_dept = d->next;
            free(d);
        }
    pthread_mutex_destroy(&r->departments_lock);
    free(r);
}

size_t replay_session_count(replay *r)
{
    return atomic_load(&r->sessions);
}

/* A keyed hash of the sender's name and, for a session, its id. */
static uint64_t keyed_hash(const replay *r, const char *sender,
                           const uint64_t *session)
{
    uint8_t input[ONCE_MAX_NAME + 1 + 8];
    uint8_t out[crypto_shorthash_BYTES];
    size_t len = strnlen(sender, ONCE_MAX_NAME), n = len + 1;
    uint64_t h;

    memcpy(input, sender, len);
    input[len] = 0;
    if (session != NULL) {
        memcpy(input + n, session, 8);
        n += 8;
    }
    crypto_shorthash(out, input, n, r->hash_key);
    memcpy(&h, out, sizeof(h));
    return h;
}

/* The usage entry of a department; made on first use when create is set.
 * NULL when there is none (or no memory for one). */
static department_usage *department_of(replay *r, const char *sender,
                                       bool create)
{
    department_usage **head, *d;

    head = &r->departments[keyed_hash(r, sender, NULL) % DEPARTMENT_BUCKETS];
    pthread_mutex_lock(&r->departments_lock);
    for (d = *head; d != NULL; d = d->next)
        if (strcmp(d->sender, sender) == 0)
            goto out;
    if (create && (d = calloc(1, sizeof(*d))) != NULL) {
        snprintf(d->sender, sizeof(d->sender), "%s", sender);
        d->next = *head;
        *head = d;
    }
out:
    pthread_mutex_unlock(&r->departments_lock);
    return d;
}

void replay_department_usage(replay *r, const char *sender, size_t *sessions,
                             size_t *in_flight)
{
    department_usage *d = department_of(r, sender, false);

    *sessions = d != NULL ? atomic_load(&d->sessions) : 0;
    *in_flight = d != NULL ? atomic_load(&d->in_flight) : 0;
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
 * per keep period per stripe, under the stripe's lock, and over every
 * stripe when a session is to be refused for want of room. */
static void sweep(replay *r, stripe *st, uint64_t now_ms)
{
    size_t b;

    st->last_sweep_ms = now_ms;
    for (b = 0; b < st->bucket_count; b++) {
        session_state **link = &st->buckets[b];

        while (*link != NULL) {
            session_state *ss = *link;

            if (now_ms > ss->last_seen_ms &&
                now_ms - ss->last_seen_ms > r->limits.keep_ms) {
                *link = ss->next;
                session_free(r, ss);
                st->count--;
            } else {
                link = &ss->next;
            }
        }
    }
}

/* Sweeps every stripe, taking each lock alone (the caller holds none), at
 * most once per FULL_SWEEP_INTERVAL_MS; false when one ran more recently,
 * so there is nothing new to free. */
static bool sweep_all(replay *r, uint64_t now_ms)
{
    uint64_t last = atomic_load(&r->last_full_sweep_ms);
    size_t i;

    if (last != 0 && now_ms >= last && now_ms - last < FULL_SWEEP_INTERVAL_MS)
        return false;
    if (!atomic_compare_exchange_strong(&r->last_full_sweep_ms, &last,
                                        now_ms))
        return false; /* another worker is sweeping */
    for (i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&r->stripes[i].lock);
        sweep(r, &r->stripes[i], now_ms);
        pthread_mutex_unlock(&r->stripes[i].lock);
    }
    return true;
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

/* Takes one unit of counter under limit: false, with counter unchanged,
 * when it is at the limit. Atomic, so that workers in different stripes
 * cannot take the last unit twice. */
static bool take(atomic_size_t *counter, size_t limit)
{
    if (atomic_fetch_add(counter, 1) < limit)
        return true;
    atomic_fetch_sub(counter, 1);
    return false;
}

/* Adds a session under the department's and the table's limits: its own
 * limit first, so a department over it is told so, whatever the others
 * hold. */
static replay_verdict add_session(replay *r, stripe *st, uint64_t hash,
                                  const char *sender, uint64_t session,
                                  session_state **out)
{
    department_usage *d;
    session_state *ss;
    size_t b;

    *out = NULL;
    if ((d = department_of(r, sender, true)) == NULL)
        return REPLAY_NO_ROOM;
    if (!take(&d->sessions, r->limits.max_sessions_per_department))
        return REPLAY_OVER_SESSIONS;
    if (!take(&r->sessions, r->limits.max_sessions)) {
        atomic_fetch_sub(&d->sessions, 1);
        return REPLAY_NO_ROOM;
    }
    if ((ss = calloc(1, sizeof(*ss))) == NULL) {
        atomic_fetch_sub(&d->sessions, 1);
        atomic_fetch_sub(&r->sessions, 1);
        return REPLAY_NO_ROOM;
    }
    ss->hash = hash;
    ss->session = session;
    ss->dept = d;
    snprintf(ss->sender, sizeof(ss->sender), "%s", sender);
    maybe_grow(st);
    b = bucket_of(st, hash);
    ss->next = st->buckets[b];
    st->buckets[b] = ss;
    st->count++;
    *out = ss;
    return REPLAY_ADMITTED;
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

static flight *find_flight(session_state *ss, uint64_t seq)
{
    uint32_t i;

    for (i = 0; i < ss->flight_count; i++)
        if (ss->flights[i].seq == seq)
            return &ss->flights[i];
    return NULL;
}

/* Puts seq in flight, within its department's limit. */
static replay_verdict start_flight(replay *r, session_state *ss, uint64_t seq,
                                   const uint8_t digest[32])
{
    flight *fl;

    if (!take(&ss->dept->in_flight, r->limits.max_in_flight_per_department))
        return REPLAY_OVER_IN_FLIGHT;
    if (ss->flight_count == ss->flight_cap) {
        uint32_t cap = ss->flight_cap ? ss->flight_cap * 2 : INITIAL_FLIGHTS;
        flight *grown = realloc(ss->flights, cap * sizeof(*grown));

        if (grown == NULL) {
            atomic_fetch_sub(&ss->dept->in_flight, 1);
            return REPLAY_NO_ROOM;
        }
        ss->flights = grown;
        ss->flight_cap = cap;
    }
    fl = &ss->flights[ss->flight_count++];
    fl->seq = seq;
    memcpy(fl->digest, digest, SLOT_DIGEST_BYTES);
    window_mark(ss, seq);
    return REPLAY_ADMITTED;
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

/* The verdict on a seq the window has seen (or is below it): in flight,
 * answered and kept, or no longer remembered. */
static replay_verdict seen_before(session_state *ss, uint64_t seq,
                                  const uint8_t digest[32],
                                  replay_answer *answer)
{
    const slot *sl = &ss->slots[seq % REPLAY_SLOTS];
    const flight *fl = find_flight(ss, seq);

    if (fl != NULL)
        return memcmp(fl->digest, digest, SLOT_DIGEST_BYTES) == 0
                   ? REPLAY_IN_FLIGHT
                   : REPLAY_REFUSED;
    if (!(sl->answered || sl->released) || sl->seq != seq)
        return REPLAY_UNKNOWN;
    if (memcmp(sl->digest, digest, SLOT_DIGEST_BYTES) != 0)
        return REPLAY_REFUSED;
    if (sl->released) /* and below the window: no longer admitted */
        return REPLAY_UNKNOWN;
    return copy_answer(sl, answer);
}

replay_verdict replay_admit(replay *r, const char *sender, uint64_t session,
                            uint64_t seq, const uint8_t digest[32],
                            uint64_t now_ms, replay_answer *answer)
{
    uint64_t hash = keyed_hash(r, sender, &session);
    stripe *st = stripe_of(r, hash);
    replay_verdict verdict;
    session_state *ss;
    bool swept = false, again;
    slot *sl;

    answer->kind = 0;
    answer->body = NULL;
    answer->len = 0;
    pthread_mutex_lock(&st->lock);
    if (now_ms > st->last_sweep_ms &&
        now_ms - st->last_sweep_ms > r->limits.keep_ms / 4)
        sweep(r, st, now_ms);
    while ((ss = find_session(st, hash, sender, session)) == NULL) {
        verdict = add_session(r, st, hash, sender, session, &ss);
        if (verdict == REPLAY_ADMITTED)
            break;
        /* Before refusing, free what every stripe holds idle: the
         * sessions in the way may live in any of them. Then look again,
         * as another worker may have added this session meanwhile. */
        if ((verdict == REPLAY_OVER_SESSIONS || verdict == REPLAY_NO_ROOM) &&
            !swept) {
            pthread_mutex_unlock(&st->lock);
            swept = sweep_all(r, now_ms);
            pthread_mutex_lock(&st->lock);
            if (swept)
                continue;
        }
        goto out;
    }
    ss->last_seen_ms = now_ms;
    sl = &ss->slots[seq % REPLAY_SLOTS];
    /* A released seq within the window: admitted again, same bytes only. */
    again = sl->released && sl->seq == seq &&
            ss->highest - seq < REPLAY_WINDOW &&
            memcmp(sl->digest, digest, SLOT_DIGEST_BYTES) == 0;
    if (!again && seq <= ss->highest &&
        (ss->highest - seq >= REPLAY_WINDOW || window_test(ss, seq)))
        verdict = seen_before(ss, seq, digest, answer);
    else
        verdict = start_flight(r, ss, seq, digest);
    if (again && verdict == REPLAY_ADMITTED)
        sl->released = false;
out:
    pthread_mutex_unlock(&st->lock);
    return verdict;
}

/* Takes len bytes of the memory budget for kept answers, if there are. */
static bool reserve_cache(replay *r, size_t len)
{
    if (atomic_fetch_add(&r->cached_bytes, len) + len <=
        r->limits.max_cached_bytes)
        return true;
    atomic_fetch_sub(&r->cached_bytes, len);
    return false;
}

/* Takes fl off its session's list of envelopes in flight. */
static void end_flight(session_state *ss, flight *fl)
{
    *fl = ss->flights[--ss->flight_count];
    atomic_fetch_sub(&ss->dept->in_flight, 1);
    if (ss->flight_count == 0 && ss->flight_cap > INITIAL_FLIGHTS) {
        free(ss->flights);
        ss->flights = NULL;
        ss->flight_cap = 0;
    }
}

/* Ends the flight of seq and marks its slot: answered, keeping the
 * answer's body for a retry when it fits the cache; or released, with
 * nothing kept, so a retry of the same bytes is executed afresh. A slot
 * holding a later seq keeps it: a retry of this one is looked up in the
 * replies table (which has nothing for a released one: REPLAY). */
static void settle(replay *r, const char *sender, uint64_t session,
                   uint64_t seq, bool answered, int kind,
                   const uint8_t *body, size_t len)
{
    uint64_t hash = keyed_hash(r, sender, &session);
    stripe *st = stripe_of(r, hash);
    session_state *ss;
    flight *fl;
    slot *sl;

    pthread_mutex_lock(&st->lock);
    ss = find_session(st, hash, sender, session);
    if (ss == NULL || (fl = find_flight(ss, seq)) == NULL)
        goto out; /* idle long enough to be forgotten */
    sl = &ss->slots[seq % REPLAY_SLOTS];
    if (!(sl->answered && sl->seq > seq)) {
        slot_drop_body(r, sl);
        sl->seq = seq;
        memcpy(sl->digest, fl->digest, SLOT_DIGEST_BYTES);
        sl->answered = answered;
        sl->released = !answered;
        sl->kind = (uint8_t)kind;
        if (answered && body != NULL && len <= MAX_CACHED_ANSWER &&
            reserve_cache(r, len)) {
            sl->body = malloc(len > 0 ? len : 1);
            if (sl->body == NULL)
                atomic_fetch_sub(&r->cached_bytes, len);
            else if (len > 0)
                memcpy(sl->body, body, len);
            if (sl->body != NULL)
                sl->len = (uint32_t)len;
        }
    }
    end_flight(ss, fl);
out:
    pthread_mutex_unlock(&st->lock);
}

void replay_finish(replay *r, const char *sender, uint64_t session,
                   uint64_t seq, int kind, const uint8_t *body, size_t len)
{
    settle(r, sender, session, seq, true, kind, body, len);
}

void replay_release(replay *r, const char *sender, uint64_t session,
                    uint64_t seq)
{
    settle(r, sender, session, seq, false, 0, NULL, 0);
}
