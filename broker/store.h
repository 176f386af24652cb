/*
 * store.h - the one LMDB environment of a broker home.
 *
 * One environment with named tables, so a record, its reply and (later) its
 * log leaf commit in one transaction. Each table belongs to one module and
 * only that module reads or writes it:
 *
 *   departments, department_keys, types, grants   policy.c
 *   records, latest, record_counts                registry.c
 *   replies                                       replay.c
 *
 * onced and oncectl open the same environment; LMDB serialises their write
 * transactions, and onced reads policy in each request's read transaction,
 * so oncectl's changes apply to the running broker without a restart.
 */
#ifndef ONCE_STORE_H
#define ONCE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "once/once.h"

#define STORE_DEFAULT_MAP_SIZE ((size_t)16 << 30) /* CONFIG_DEFAULT_MAP_SIZE_MB */
/* LMDB reader slots of an environment (store.c says why this many). */
#define STORE_MAX_READERS 256
/* Slots onced leaves to others besides one per worker: its ZAP handler,
 * oncectl, exports and audits run beside it. */
#define STORE_READERS_RESERVED 32
/* The file in the database directory that onced holds locked while it
 * runs: one broker per database. */
#define STORE_LOCK_FILE "onced.lock"

typedef struct store {
    MDB_env *env;
    MDB_dbi departments;      /* id -> Department */
    MDB_dbi department_keys;  /* public key (32 bytes) -> id */
    MDB_dbi types;            /* name -> RecordType */
    MDB_dbi grants;           /* requester 0 type 0 purpose -> Grant */
    MDB_dbi records;          /* len type, len subject, version u64be -> StoredRecord */
    MDB_dbi latest;           /* len type, len subject -> version u64be */
    MDB_dbi record_counts;    /* len type -> records of the type u64be */
    MDB_dbi replies;          /* sent_at u64be sender 0 session u64be
                                 seq u64be -> StoredReply */
} store;

/* Opens (creating if needed) the environment in directory `dir` and every
 * table. map_size 0 means STORE_DEFAULT_MAP_SIZE. MDB_NOTLS is set so read
 * transactions may be reset and renewed by a worker thread. */
int store_open(store *s, const char *dir, size_t map_size, once_error *err);
void store_close(store *s);

/* Takes the broker's exclusive lock on the database directory dir (made
 * 0700 if missing): STORE_LOCK_FILE, opened without following a link and
 * locked for as long as *fd stays open. -ONCE_ERR_EXISTS when another
 * process holds it (the message names its pid), another negative code when
 * the file cannot be opened. Only onced takes it; oncectl and the tools
 * share the database with a running broker through LMDB. */
int store_lock(const char *dir, int *fd, once_error *err);
void store_unlock(int fd);

/* The map's size and a cheap upper bound of the bytes in use: every page
 * up to the highest one ever written, without a transaction. -1 when LMDB
 * cannot tell. */
int store_usage_bound(const store *s, size_t *bound, size_t *map_size);

/* The bytes in use: the bound less the pages on LMDB's free list, which
 * later writes reuse. Reads the free list in a read transaction of its
 * own, so call it between write transactions. */
int store_usage(const store *s, size_t *used, once_error *err);

/* Read-write and read-only transactions with errors mapped to once codes:
 * MDB_MAP_FULL -> ONCE_ERR_STORAGE_FULL, anything else -> ONCE_ERR_IO. */
int store_begin(const store *s, int read_only, MDB_txn **txn, once_error *err);
int store_commit(MDB_txn *txn, once_error *err);

/* Maps an LMDB return code to a once error with `what` in the message. */
int store_error(int mdb_rc, const char *what, once_error *err);

/* Calls fn for the entries of table dbi in key order: from the first key
 * at or after *from (from the first key of the table when from is NULL),
 * for as long as the key starts with the first prefix_len bytes of *from
 * (0: to the end). fn returns 0 to go on; anything else stops the walk
 * and is what store_walk returns. An error of LMDB's is
 * store_error(what). */
typedef int (*store_walk_fn)(const MDB_val *key, const MDB_val *val,
                             void *arg);
int store_walk(MDB_txn *txn, MDB_dbi dbi, const MDB_val *from,
               size_t prefix_len, store_walk_fn fn, void *arg,
               const char *what, once_error *err);

/* Keys hold numbers big-endian, so LMDB's byte order is numeric order and
 * ranges scan oldest or lowest first. */
static inline void store_put_u64be(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t store_get_u64be(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

#endif
