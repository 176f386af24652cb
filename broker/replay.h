/*
 * replay.h - anti-replay windows per (sender, session), the answers kept
 * for retries, and the durable `replies` table. See replay.c.
 */
#ifndef ONCE_REPLAY_H
#define ONCE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>

#include "once.pb-c.h"
#include "once/once.h"
#include "store.h"

/* Sequence numbers at and below the highest one seen that are remembered
 * one by one (RFC 4303's anti-replay window). */
#define REPLAY_WINDOW 1024

typedef struct replay replay;

/* keep_ms: how long an idle session is remembered (at least twice the skew
 * window, see replay.c); max_sessions bounds memory; max_cached_bytes
 * bounds the answers kept in memory for retries. */
int replay_create(replay **out, uint64_t keep_ms, size_t max_sessions,
                  size_t max_cached_bytes, once_error *err);
void replay_destroy(replay *r);

typedef enum replay_verdict {
    REPLAY_ADMITTED,  /* new: now marked in flight; answer it, then finish */
    REPLAY_IN_FLIGHT, /* the same bytes are being answered: send nothing */
    REPLAY_ANSWERED,  /* the same bytes were answered; *answer is a copy of
                         the answer when it was kept (else body is NULL) */
    REPLAY_UNKNOWN,   /* seq already used or below the window, and the bytes
                         are no longer remembered: ask the replies table */
    REPLAY_REFUSED,   /* seq already used by different bytes */
    REPLAY_NO_ROOM    /* too many sessions to remember another */
} replay_verdict;

typedef struct replay_answer {
    int kind;        /* Once__Kind of the answer */
    uint8_t *body;   /* malloc'd copy, NULL when not kept; caller frees */
    size_t len;
} replay_answer;

/* Checks (sender, session, seq) of an envelope whose signature verified
 * and, when it is new, marks it seen in the same critical section, so two
 * workers holding copies of one envelope cannot both admit it. digest is
 * the SHA-256 of the envelope bytes. */
replay_verdict replay_admit(replay *r, const char *sender, uint64_t session,
                            uint64_t seq, const uint8_t digest[32],
                            uint64_t now_ms, replay_answer *answer);

/* Records the answer of an admitted envelope, so a retry of the same bytes
 * gets it again instead of a second execution. */
void replay_finish(replay *r, const char *sender, uint64_t session,
                   uint64_t seq, int kind, const uint8_t *body, size_t len);

/* Sessions currently remembered (for the log). */
size_t replay_session_count(replay *r);

/* ---- the durable table `replies` (every logged exchange) -------------- */

/* Stores the answer of an envelope in the caller's write transaction, with
 * the record and leaf it answers for. Key: sent_at_ms u64be (the
 * envelope's), sender 0x00, session u64be, seq u64be (replay.c says why
 * the time comes first). On failure the transaction is to be aborted. */
int replay_reply_put(MDB_txn *txn, const store *s, uint64_t sent_at_ms,
                     const char *sender, uint64_t session, uint64_t seq,
                     const uint8_t digest[32], int kind, const uint8_t *body,
                     size_t len, once_error *err);

/* Looks up the stored answer of (sent_at, sender, session, seq): 0 with
 * *out (free it with once__stored_reply__free_unpacked(*out, alloc)) when
 * its digest equals digest, 1 when that key answered other bytes,
 * -ONCE_ERR_NOT_FOUND when nothing is stored, another negative code on a
 * database failure. */
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
