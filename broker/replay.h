/*
 * replay.h - anti-replay windows per (sender, session), the envelopes in
 * flight and the answers kept for retries, with per-department limits.
 * See replay.c; the durable `replies` table is in replies.h.
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
#include "replies.h"
#include "store.h"

/* Sequence numbers at and below the highest one seen that are remembered
 * one by one (RFC 4303's anti-replay window). */
#define REPLAY_WINDOW 1024

typedef struct replay replay;

typedef struct replay_limits {
    /* How long an idle session is remembered: at least twice the skew
     * window (see replay.c). */
    uint64_t keep_ms;
    /* Sessions of all departments together: bounds memory. */
    size_t max_sessions;
    /* Sessions and envelopes in flight (admitted, not yet answered) of one
     * department, so that no department can take what the others need. */
    size_t max_sessions_per_department;
    size_t max_in_flight_per_department;
    /* Bytes of answers kept in memory for retries. */
    size_t max_cached_bytes;
} replay_limits;

int replay_create(replay **out, const replay_limits *limits, once_error *err);
void replay_destroy(replay *r);

typedef enum replay_verdict {
    REPLAY_ADMITTED,  /* new: now marked in flight; answer it, then finish */
    REPLAY_IN_FLIGHT, /* the same bytes are being answered: send nothing */
    REPLAY_ANSWERED,  /* the same bytes were answered; *answer is a copy of
                         the answer when it was kept (else body is NULL) */
    REPLAY_UNKNOWN,   /* seq already used or below the window, and the bytes
                         are no longer remembered: ask the replies table */
    REPLAY_REFUSED,   /* seq already used by different bytes */
    REPLAY_NO_ROOM,   /* too many sessions of all departments together, or
                         out of memory: nothing was marked */
    REPLAY_OVER_SESSIONS,  /* the sender is at max_sessions_per_department:
                              nothing was marked */
    REPLAY_OVER_IN_FLIGHT  /* the sender is at max_in_flight_per_department:
                              nothing was marked */
} replay_verdict;

typedef struct replay_answer {
    int kind;        /* Once__Kind of the answer */
    uint8_t *body;   /* malloc'd copy, NULL when not kept; caller frees */
    size_t len;
} replay_answer;

/* Checks (sender, session, seq) of an envelope whose signature verified
 * and, when it is new, marks it seen and in flight in the same critical
 * section, so two workers holding copies of one envelope cannot both admit
 * it. digest is the SHA-256 of the envelope bytes. now_ms is a monotonic
 * clock. */
replay_verdict replay_admit(replay *r, const char *sender, uint64_t session,
                            uint64_t seq, const uint8_t digest[32],
                            uint64_t now_ms, replay_answer *answer);

/* Ends the flight of an admitted envelope, exactly once for each: records
 * its answer, so a retry of the same bytes gets it again instead of a
 * second execution. body NULL: there is no answer to keep (a retry is
 * then looked up in the replies table, or executed if nothing is there). */
void replay_finish(replay *r, const char *sender, uint64_t session,
                   uint64_t seq, int kind, const uint8_t *body, size_t len);

/* Ends the flight of an admitted envelope, instead of replay_finish, when
 * its answer says the broker could not act
 * (INTERNAL, STORAGE_FULL, UNAVAILABLE): nothing is kept, and a copy of
 * the same bytes is admitted again while the seq's slot lasts (the
 * session's last 32 seqs); other bytes with that seq stay a replay. */
void replay_release(replay *r, const char *sender, uint64_t session,
                    uint64_t seq);

/* Sessions currently remembered (for the log). */
size_t replay_session_count(replay *r);

/* What the table counts for one department: its sessions and its
 * envelopes in flight (0 and 0 for one it never saw). */
void replay_department_usage(replay *r, const char *sender, size_t *sessions,
                             size_t *in_flight);

#endif
