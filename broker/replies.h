/*
 * replies.h - the durable table `replies`: the answer of every logged
 * exchange, for retries. See replies.c.
 */
#ifndef ONCE_REPLIES_H
#define ONCE_REPLIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>

#include "once.pb-c.h"
#include "once/once.h"
#include "store.h"

/* Stores the answer of an envelope in the caller's write transaction, with
 * the record and leaf it answers for. Key: sent_at_ms u64be (the
 * envelope's), sender 0x00, session u64be, seq u64be (replay.c says why
 * the time comes first). On failure the transaction is to be aborted. */
int replay_reply_put(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                     const char *sender, uint64_t session, uint64_t seq,
                     const uint8_t digest[32], int kind, const uint8_t *body,
                     size_t len, once_error *err);

/* Stores the answer of a granted request without a proof as what rebuilds
 * it (replies.c): the record version it served, the disclosures granted
 * (bit i: the version's StoredRecord.disclosures[i]) and its leaf index. */
int replay_reply_put_rebuilt(MDB_txn *txn, const store *s,
                             uint64_t sent_at_ms, const char *sender,
                             uint64_t session, uint64_t seq,
                             const uint8_t digest[32], uint64_t version,
                             uint64_t disclosed, uint64_t leaf_index,
                             once_error *err);

/* Looks up the stored answer of (sent_at, sender, session, seq): 0 with
 * *out (free it with once__stored_reply__free_unpacked(*out, alloc)) when
 * its digest equals digest, 1 when that key answered other bytes,
 * -ONCE_ERR_NOT_FOUND when nothing is stored, another negative code on a
 * database failure. A non-zero (*out)->record_version means the answer
 * is to be rebuilt (replay_reply_put_rebuilt). */
int replay_reply_find(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                      const char *sender, uint64_t session, uint64_t seq,
                      const uint8_t digest[32], ProtobufCAllocator *alloc,
                      Once__StoredReply **out, once_error *err);

/* Empties `replies` when it holds keys of the layout before sent_at led
 * them (the broker's first versions), which no lookup or prune would ever
 * reach; *dropped says how many went. Called once at start-up. */
int replay_replies_upgrade(MDB_txn *txn, const store *s, size_t *dropped,
                           once_error *err);

/* How long past the skew window a stored answer is kept, for the wall
 * clock stepping back between an envelope's clock check and a prune. */
#define REPLAY_REPLY_MARGIN_MS 60000

/* The before_ms to prune with at wall-clock time now_ms under a skew window
 * of skew_ms: now_ms - skew_ms - REPLAY_REPLY_MARGIN_MS, or 0 (prune
 * nothing) when the clock reads earlier than that span. */
uint64_t replay_reply_cutoff(uint64_t now_ms, uint64_t skew_ms);

/* Whether the oldest stored answer is of an envelope sent before
 * before_ms, so that replay_reply_prune has work: one cursor read, for a
 * caller that prunes in a transaction of its own only when there is work.
 * A read failure counts as no work; the prune would report it. */
bool replay_reply_expired(MDB_txn *txn, const store *s, uint64_t before_ms);

/* Deletes, oldest first, at most max stored answers of envelopes whose
 * sent_at is below before_ms, in the caller's write transaction; *pruned
 * (when not NULL) is how many were deleted. Bounded so the writer can call
 * it once per group commit without stalling; with max above the group size
 * it keeps up with insertion. 0, or a negative once error code after which
 * the transaction is to be aborted. */
int replay_reply_prune(MDB_txn *txn, const store *s, uint64_t before_ms,
                       size_t max, size_t *pruned, once_error *err);

#endif
