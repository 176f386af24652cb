/*
 * state.c - what an adapter keeps on disk: the idempotency table.
 *
 * A caller that sends PUT or POST with an Idempotency-Key and loses the
 * answer (a timeout, a restart of either side) sends the same request
 * again; the spool, restarted after a crash, takes up the file it had in
 * hand, under a key made of the file's name and content (adapters/spool/
 * spool.c). The adapter must then not sign a second envelope: it would be a
 * second version. So before the first attempt is sent, the signed envelope
 * is committed here under (caller, key) together with a fingerprint of the
 * request (method, path, body); a retry sends those very bytes, which the
 * broker answers with its original answer (docs/PROTOCOL.md 6.3). Once a
 * final answer is known it is kept too, and later retries are answered
 * from here without the broker. The same key with another request is a
 * conflict (409).
 *
 * The envelopes hold subjects and field values, personal data: the state
 * directory is created 0700 and LMDB's files 0600. Entries are kept for
 * keep_ms (idempotency_hours, 24 by default) after their last write. A
 * full pass at start removes the older ones, and every write then looks
 * at the next STATE_SWEEP_STEP entries in key order, going round the table
 * as a clock hand does: a gateway that runs for months removes what
 * expired within the time it takes to write 1/STATE_SWEEP_STEP of a
 * day's entries, so the table stays near one retention period's size
 * instead of growing to its map's limit, and no write pays for a scan.
 * state_put_many writes many entries in one transaction, one fsync for
 * all (once-spool import's batches), and moves the hand as far as as
 * many single writes would.
 *
 * Value layout (big-endian): u64 created_at, fingerprint[32], u64 version,
 * u32 status, u32 len(envelope), envelope, u32 len(answer), answer.
 *
 * Requests of this process holding a key are also marked in memory
 * (state_claim), so two concurrent requests with one key do not both send.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>
#include <sodium.h>

#include "common.h"

#define STATE_MAP_SIZE ((size_t)1 << 30)
#define STATE_DEFAULT_KEEP_MS (24ull * 3600 * 1000)
#define STATE_SWEEP_STEP 8
#define STATE_MAX_KEY 255
#define STATE_MAX_CLAIMS 1024

struct idem_state {
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t keep_ms;
    /* Where the next write's sweep starts; empty: at the first key. Only
     * touched inside write transactions, which LMDB serializes. */
    uint8_t sweep_key[ONCE_MAX_NAME + 1 + STATE_MAX_KEY];
    size_t sweep_len;
    pthread_mutex_t claims_lock;
    uint8_t claims[STATE_MAX_CLAIMS][32];
    size_t claim_count;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static int lmdb_error(once_error *err, int rc, const char *what)
{
    return once_error_set(err, rc == MDB_MAP_FULL ? ONCE_ERR_STORAGE_FULL
                                                  : ONCE_ERR_IO,
                          "idempotency state: %s: %s", what,
                          mdb_strerror(rc));
}

/* Whether an entry was last written before limit (or is unreadable). */
static bool expired(const MDB_val *v, uint64_t limit)
{
    return v->mv_size < 8 || get_u64(v->mv_data) < limit;
}

/* Removes every entry older than keep_ms. */
static int purge(idem_state *s, once_error *err)
{
    uint64_t limit = now_ms() - s->keep_ms;
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    size_t removed = 0;
    int rc;

    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return lmdb_error(err, rc, "begin");
    if ((rc = mdb_cursor_open(txn, s->dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        return lmdb_error(err, rc, "cursor");
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (expired(&v, limit)) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            removed++;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return lmdb_error(err, rc, "purge");
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return lmdb_error(err, rc, "commit");
    if (removed > 0)
        adapter_log("info", "removed %zu idempotency entries older than "
                    "%llu h", removed,
                    (unsigned long long)(s->keep_ms / 3600000));
    return 0;
}

int state_open(idem_state **out, const char *dir, uint64_t keep_ms,
               once_error *err)
{
    idem_state *s;
    struct stat sb;
    MDB_txn *txn;
    int rc;

    *out = NULL;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return once_error_set(err, ONCE_ERR_IO, "cannot create the state "
                              "directory %s: %s", dir, strerror(errno));
    if (lstat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode) ||
        (sb.st_mode & 077) != 0)
        return once_error_set(err, ONCE_ERR_IO, "the state directory %s "
                              "must be a directory only its owner can open "
                              "(chmod 700): it holds personal data", dir);
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    s->keep_ms = keep_ms != 0 ? keep_ms : STATE_DEFAULT_KEEP_MS;
    pthread_mutex_init(&s->claims_lock, NULL);
    if ((rc = mdb_env_create(&s->env)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, STATE_MAP_SIZE)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, 512)) != 0 ||
        (rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600)) != 0) {
        rc = lmdb_error(err, rc, dir);
        state_close(s);
        return rc;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0) {
        rc = lmdb_error(err, rc, "open");
        state_close(s);
        return rc;
    }
    if ((rc = purge(s, err)) < 0) {
        state_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void state_close(idem_state *s)
{
    if (s == NULL)
        return;
    if (s->env != NULL)
        mdb_env_close(s->env);
    pthread_mutex_destroy(&s->claims_lock);
    free(s);
}

/* The LMDB key: caller || 0x00 || key. */
static int make_key(char *buf, size_t cap, const char *caller,
                    const char *key, MDB_val *out)
{
    size_t a = strlen(caller), b = strlen(key);

    if (b == 0 || b > STATE_MAX_KEY || a + 1 + b > cap)
        return -1;
    memcpy(buf, caller, a);
    buf[a] = '\0';
    memcpy(buf + a + 1, key, b);
    out->mv_data = buf;
    out->mv_size = a + 1 + b;
    return 0;
}

void idem_entry_clear(idem_entry *e)
{
    free(e->envelope);
    free(e->answer);
    memset(e, 0, sizeof(*e));
}

int state_get(idem_state *s, const char *caller, const char *key,
              idem_entry *e, once_error *err)
{
    char kb[ONCE_MAX_NAME + 1 + STATE_MAX_KEY + 1];
    const uint8_t *p;
    MDB_txn *txn;
    MDB_val k, v;
    size_t env_len, ans_len;
    int rc;

    memset(e, 0, sizeof(*e));
    if (make_key(kb, sizeof(kb), caller, key, &k) < 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "Idempotency-Key must be 1 to %d characters",
                              STATE_MAX_KEY);
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
        return lmdb_error(err, rc, "begin");
    rc = mdb_get(txn, s->dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return -ONCE_ERR_NOT_FOUND;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return lmdb_error(err, rc, "get");
    }
    p = v.mv_data;
    rc = -ONCE_ERR_INTERNAL;
    if (v.mv_size < 8 + 32 + 8 + 4 + 4)
        goto corrupt;
    memcpy(e->fingerprint, p + 8, 32);
    e->version = get_u64(p + 40);
    e->status = (int)get_u32(p + 48);
    env_len = get_u32(p + 52);
    if (v.mv_size < 56 + env_len + 4)
        goto corrupt;
    ans_len = get_u32(p + 56 + env_len);
    if (v.mv_size != 60 + env_len + ans_len)
        goto corrupt;
    e->envelope = malloc(env_len > 0 ? env_len : 1);
    e->answer = malloc(ans_len + 1);
    if (e->envelope == NULL || e->answer == NULL) {
        mdb_txn_abort(txn);
        idem_entry_clear(e);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    memcpy(e->envelope, p + 56, env_len);
    e->envelope_len = env_len;
    memcpy(e->answer, p + 60 + env_len, ans_len);
    e->answer[ans_len] = '\0';
    mdb_txn_abort(txn);
    return 0;
corrupt:
    mdb_txn_abort(txn);
    idem_entry_clear(e);
    return once_error_set(err, ONCE_ERR_INTERNAL, "an idempotency entry is "
                          "stored corrupt");
}

/* Looks at the next STATE_SWEEP_STEP entries after the last sweep's end
 * and removes the expired ones, inside the caller's write transaction. A
 * failure only leaves them for a later sweep. */
static void sweep(idem_state *s, MDB_txn *txn)
{
    uint64_t limit = now_ms() - s->keep_ms;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, step;

    if (mdb_cursor_open(txn, s->dbi, &cur) != 0)
        return;
    k.mv_data = s->sweep_key;
    k.mv_size = s->sweep_len;
    rc = s->sweep_len > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                          : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (step = 0; rc == 0 && step < STATE_SWEEP_STEP; step++) {
        if (expired(&v, limit) && mdb_cursor_del(cur, 0) != 0)
            rc = -1;
        else /* after a delete, LMDB's next is the entry that followed */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    s->sweep_len = 0;
    if (rc == 0 && k.mv_size <= sizeof(s->sweep_key)) {
        memcpy(s->sweep_key, k.mv_data, k.mv_size);
        s->sweep_len = k.mv_size;
    }
    mdb_cursor_close(cur);
}

/* Puts e under (caller, key) in txn. */
static int put_entry(idem_state *s, MDB_txn *txn, const char *caller,
                     const char *key, const idem_entry *e, once_error *err)
{
    char kb[ONCE_MAX_NAME + 1 + STATE_MAX_KEY + 1];
    size_t ans_len = e->answer != NULL ? strlen(e->answer) : 0;
    MDB_val k, v;
    uint8_t *p;
    int rc;

    if (make_key(kb, sizeof(kb), caller, key, &k) < 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "Idempotency-Key must be 1 to %d characters",
                              STATE_MAX_KEY);
    v.mv_size = 60 + e->envelope_len + ans_len;
    if ((rc = mdb_put(txn, s->dbi, &k, &v, MDB_RESERVE)) != 0)
        return lmdb_error(err, rc, "put");
    p = v.mv_data;
    put_u64(p, now_ms());
    memcpy(p + 8, e->fingerprint, 32);
    put_u64(p + 40, e->version);
    put_u32(p + 48, (uint32_t)e->status);
    put_u32(p + 52, (uint32_t)e->envelope_len);
    if (e->envelope_len > 0)
        memcpy(p + 56, e->envelope, e->envelope_len);
    put_u32(p + 56 + e->envelope_len, (uint32_t)ans_len);
    if (ans_len > 0)
        memcpy(p + 60 + e->envelope_len, e->answer, ans_len);
    return 0;
}

int state_put(idem_state *s, const char *caller, const char *key,
              const idem_entry *e, once_error *err)
{
    return state_put_many(s, caller, &key, &e, 1, err);
}

int state_put_many(idem_state *s, const char *caller,
                   const char *const *keys, const idem_entry *const *entries,
                   size_t n, once_error *err)
{
    MDB_txn *txn;
    size_t i;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return lmdb_error(err, rc, "begin");
    for (i = 0; i < n; i++) {
        if ((rc = put_entry(s, txn, caller, keys[i], entries[i], err)) < 0) {
            mdb_txn_abort(txn);
            return rc;
        }
        /* The clock hand moves as far per entry written as for one put. */
        sweep(s, txn);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return lmdb_error(err, rc, "commit");
    return 0;
}

static void claim_hash(uint8_t out[32], const char *caller, const char *key)
{
    crypto_hash_sha256_state h;

    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)caller,
                              strlen(caller) + 1);
    crypto_hash_sha256_update(&h, (const uint8_t *)key, strlen(key));
    crypto_hash_sha256_final(&h, out);
}

bool state_claim(idem_state *s, const char *caller, const char *key)
{
    uint8_t h[32];
    bool ok = true;
    size_t i;

    claim_hash(h, caller, key);
    pthread_mutex_lock(&s->claims_lock);
    for (i = 0; i < s->claim_count && ok; i++)
        ok = memcmp(s->claims[i], h, 32) != 0;
    if (ok && s->claim_count == STATE_MAX_CLAIMS)
        ok = false;
    if (ok)
        memcpy(s->claims[s->claim_count++], h, 32);
    pthread_mutex_unlock(&s->claims_lock);
    return ok;
}

void state_unclaim(idem_state *s, const char *caller, const char *key)
{
    uint8_t h[32];
    size_t i;

    claim_hash(h, caller, key);
    pthread_mutex_lock(&s->claims_lock);
    for (i = 0; i < s->claim_count; i++) {
        if (memcmp(s->claims[i], h, 32) == 0) {
            memcpy(s->claims[i], s->claims[--s->claim_count], 32);
            break;
        }
    }
    pthread_mutex_unlock(&s->claims_lock);
}
