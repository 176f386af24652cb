/*
 * subscriptions.h - durable subscriptions, the notice events derived from
 * the exchange log, the index of records departments hold, and each
 * department's acknowledgement cursor. See subscriptions.c.
 */
#ifndef ONCE_SUBSCRIPTIONS_H
#define ONCE_SUBSCRIPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "audit_hash.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "store.h"

/* Subscriptions one department may hold (PROTOCOL.md 8). */
#define SUBSCRIPTIONS_MAX_PER_DEPARTMENT 256
/* Notices in one NoticeBatch, and leaves looked at for one pull or push
 * (PROTOCOL.md 4.9): each answer costs the broker a bounded amount. */
#define NOTICES_MAX_PER_BATCH 64
#define NOTICES_MAX_SCANNED 4096
/* The most credit a connection may hold: what one subscriber can make
 * the broker queue for it. */
#define NOTICES_MAX_CREDIT 1024

typedef struct subscriptions {
    MDB_dbi subs;     /* dept 0 scope type 0 subject -> Subscription */
    MDB_dbi events;   /* leaf u64be -> subject hash[32] || Notice */
    MDB_dbi held;     /* type 0 subject hash[32] dept -> "" */
    MDB_dbi cursors;  /* dept -> acked u64be */
    MDB_dbi marks;    /* "held_through" -> u64be (held_buffer.c) */
} subscriptions;

/* A key of `held`: type 0 subject hash dept. */
#define SUBSCRIPTIONS_HELD_KEY_MAX (ONCE_MAX_NAME + 1 + \
                                    AUDIT_SUBJECT_HASH_BYTES + ONCE_MAX_NAME)

/* One notice as a scan finds it; the strings live until the callback
 * returns. */
typedef struct notice {
    uint64_t leaf_index;
    const char *type;
    const char *subject;
    uint64_t version;
    int event; /* NOTICE_EVENT_NEW_VERSION or NOTICE_EVENT_REVOKED */
} notice;

/* Opens (creating) the five tables in s's environment. */
int subscriptions_open(subscriptions *t, const store *s, once_error *err);

/* Stores department's subscription (scope, type, subject), made by the
 * subscribe leaf leaf_index; one that exists keeps its first leaf. */
int subscriptions_put(MDB_txn *txn, const subscriptions *t, const char *dept,
                      int scope, const char *type, const char *subject,
                      uint64_t leaf_index, uint64_t created_at,
                      once_error *err);
/* Deletes it: 0, or -ONCE_ERR_NOT_FOUND when there was none. */
int subscriptions_del(MDB_txn *txn, const subscriptions *t, const char *dept,
                      int scope, const char *type, const char *subject,
                      once_error *err);
/* 0 when it exists, with the leaf index of the subscribe leaf that made
 * it in *leaf_index (may be NULL); -ONCE_ERR_NOT_FOUND when not. */
int subscriptions_get(MDB_txn *txn, const subscriptions *t, const char *dept,
                      int scope, const char *type, const char *subject,
                      uint64_t *leaf_index, once_error *err);
/* The number of department's subscriptions, counted up to max + 1. */
int subscriptions_count(MDB_txn *txn, const subscriptions *t,
                        const char *dept, size_t max, size_t *n,
                        once_error *err);
/* Calls fn for each subscription of dept (every department's when dept
 * is NULL), in key order; fn returning nonzero stops the walk with that
 * value. */
int subscriptions_list(MDB_txn *txn, const subscriptions *t, const char *dept,
                       int (*fn)(const char *dept,
                                 const Once__Subscription *s, void *arg),
                       void *arg, once_error *err);

/* The writer's puts: the event of a granted publish or revoke at
 * leaf_index, in the transaction that commits the leaf, and the record a
 * granted request gave dept, in that transaction or later in key order
 * (held_buffer.c). */
int subscriptions_event_put(MDB_txn *txn, const subscriptions *t,
                            uint64_t leaf_index,
                            const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                            const char *type, const char *subject,
                            uint64_t version, bool revoked, once_error *err);
int subscriptions_held_put(MDB_txn *txn, const subscriptions *t,
                           const char *type,
                           const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                           const char *dept, once_error *err);
/* Builds the `held` key of (type, hash, dept) into k: its length, 0 when
 * a name is over its limit. */
size_t subscriptions_held_key(uint8_t k[SUBSCRIPTIONS_HELD_KEY_MAX],
                              const char *type,
                              const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                              const char *dept);

/* The leaf index of the newest event; *any false when there is none. */
int subscriptions_last_event(MDB_txn *txn, const subscriptions *t,
                             uint64_t *index, bool *any, once_error *err);

/* The department's acknowledgement cursor (0 when it never acked), and
 * raising it: put keeps the larger of the stored and the given. */
int subscriptions_cursor_get(MDB_txn *txn, const subscriptions *t,
                             const char *dept, uint64_t *acked,
                             once_error *err);
int subscriptions_cursor_put(MDB_txn *txn, const subscriptions *t,
                             const char *dept, uint64_t acked,
                             once_error *err);

/* Deletes, oldest first and at most max of them, the events no
 * department can be notified of any more: those at or below the lowest
 * acknowledged cursor of the departments that hold a subscription (all
 * when none holds one), except the newest event. *more is true when
 * max stopped it. */
int subscriptions_prune(MDB_txn *txn, const subscriptions *t, size_t max,
                        size_t *deleted, bool *more, once_error *err);
/* The number of events stored. */
int subscriptions_events_stored(MDB_txn *txn, const subscriptions *t,
                                size_t *n, once_error *err);

/* The subscriptions of all departments by scope: counts[scope] for
 * SCOPE_TYPE, SCOPE_SUBJECT and SCOPE_HELD, counts[0] any other (none
 * unless a key is damaged). One walk of the table. */
int subscriptions_count_by_scope(MDB_txn *txn, const subscriptions *t,
                                  uint64_t counts[4], once_error *err);

/* The notices for dept of the events after leaf `after`, ascending: at
 * most max_notices of them, looking at no more than max_events events.
 * Calls fn for each (nonzero stops). *scanned_to is the last event looked
 * at, or `after` when none was. */
int subscriptions_scan(MDB_txn *txn, const subscriptions *t, const store *s,
                       const char *dept, uint64_t after, size_t max_notices,
                       size_t max_events,
                       int (*fn)(const notice *n, void *arg), void *arg,
                       uint64_t *scanned_to, once_error *err);

#endif
