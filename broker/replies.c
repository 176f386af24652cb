/*
 * replies.c - the durable table `replies`: the answer of every logged
 * exchange, kept for retries across broker restarts (replay.c keeps the
 * in-memory windows and answers; docs/PROTOCOL.md 6.3).
 *
 * The writer stores an exchange's answer in the same LMDB transaction as
 * its record and log leaf (writer.c), so a retry after a restart, or one
 * whose answer is no longer kept in memory, still gets the original answer
 * and never stores a second version or a second leaf.
 *
 * What is kept. The answer of a granted request without a proof is not
 * kept whole: it is mostly the record, which the records table holds
 * anyway, and it was 919 of the 1,668 bytes a request added to the
 * database (docs/PERFORMANCE.md). Such an entry holds the record version,
 * which disclosures were granted (a bit each) and the leaf index, and the
 * worker rebuilds the very same bytes for the retry from the retry's own
 * Request, which is the same bytes as the original's
 * (handle_request.c, request_answer_rebuild). Record versions are never
 * deleted, and a grant changed since does not change the rebuilt answer.
 * The entry also no longer holds the subject. Every other answer (a
 * publish's, a refusal, a request with a proof, whose receipt carries a
 * checkpoint) is kept whole.
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
 */
#include <string.h>

#include "replies.h"

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

/* Stores m under the answer's key. */
static int put_stored(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                      const char *sender, uint64_t session, uint64_t seq,
                      const Once__StoredReply *m, once_error *err)
{
    uint8_t key_bytes[REPLY_KEY_MAX];
    MDB_val key, val;
    int rc;

    if ((rc = reply_key(key_bytes, &key, sent_at_ms, sender, session, seq,
                        err)) < 0)
        return rc;
    val.mv_size = once__stored_reply__get_packed_size(m);
    val.mv_data = NULL;
    /* Reserve the value in the map and encode straight into it. */
    rc = mdb_put(txn, s->replies, &key, &val, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the answer of an exchange", err);
    once__stored_reply__pack(m, val.mv_data);
    return 0;
}

int replay_reply_put(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                     const char *sender, uint64_t session, uint64_t seq,
                     const uint8_t digest[32], int kind, const uint8_t *body,
                     size_t len, once_error *err)
{
    Once__StoredReply m = ONCE__STORED_REPLY__INIT;

    m.envelope_digest.data = (uint8_t *)digest;
    m.envelope_digest.len = 32;
    m.kind = (Once__Kind)kind;
    m.body.data = (uint8_t *)body;
    m.body.len = len;
    return put_stored(txn, s, sent_at_ms, sender, session, seq, &m, err);
}

int replay_reply_put_rebuilt(MDB_txn *txn, const store *s,
                             uint64_t sent_at_ms, const char *sender,
                             uint64_t session, uint64_t seq,
                             const uint8_t digest[32], uint64_t version,
                             uint64_t disclosed, uint64_t leaf_index,
                             once_error *err)
{
    Once__StoredReply m = ONCE__STORED_REPLY__INIT;

    if (version == 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a rebuilt answer names a record version");
    m.envelope_digest.data = (uint8_t *)digest;
    m.envelope_digest.len = 32;
    m.kind = ONCE__KIND__KIND_RESPONSE;
    m.record_version = version;
    m.disclosed = disclosed;
    m.leaf_index = leaf_index;
    return put_stored(txn, s, sent_at_ms, sender, session, seq, &m, err);
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
