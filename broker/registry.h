/*
 * registry.h - the records database: every version of every record.
 *
 * A record is identified by (type, subject); versions only grow. Values are
 * serialized once.StoredRecord messages exactly as the issuer's signed
 * header and disclosures arrived. Reads hand out MDB_val pointers into the
 * read transaction's map (zero copy), valid until the transaction ends.
 */
#ifndef ONCE_REGISTRY_H
#define ONCE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "once/once.h"
#include "store.h"

/* Stores version `version` of (type, subject) and makes it the latest.
 * Refuses with -ONCE_ERR_STALE_VERSION unless version is above the latest.
 * *created (when not NULL) says whether the record is new: no version of
 * it was stored before. */
int registry_put_record(MDB_txn *txn, const store *s, const char *type,
                        const char *subject, uint64_t version,
                        const uint8_t *stored, size_t stored_len,
                        bool *created, once_error *err);

/* Latest version of (type, subject), or -ONCE_ERR_NOT_FOUND. */
int registry_latest_version(MDB_txn *txn, const store *s, const char *type,
                            const char *subject, uint64_t *version,
                            once_error *err);

/* A version (0 = latest) of (type, subject): *value points into the map,
 * *version_out is the version found. -ONCE_ERR_NOT_FOUND when absent. */
int registry_get_record(MDB_txn *txn, const store *s, const char *type,
                        const char *subject, uint64_t version,
                        MDB_val *value, uint64_t *version_out,
                        once_error *err);

/* Calls fn for every stored version of (type, subject), oldest first. */
int registry_history(MDB_txn *txn, const store *s, const char *type,
                     const char *subject,
                     int (*fn)(uint64_t version, const MDB_val *value,
                               void *arg),
                     void *arg, once_error *err);

/* Number of (type, subject) records and of stored versions. */
int registry_count(MDB_txn *txn, const store *s, size_t *records,
                   size_t *versions, once_error *err);

/* Calls fn once per record type with its number of (type, subject)
 * records, in type order: the stored counts, one entry a type, or, when
 * they do not add up to the records (a home of an older version), one
 * walk of the `latest` table. fn's non-zero return stops the walk and is
 * returned. */
int registry_count_types(MDB_txn *txn, const store *s,
                         int (*fn)(const char *type, uint64_t records,
                                   void *arg),
                         void *arg, once_error *err);

/* In a write transaction: when the stored counts do not add up to the
 * records, rewrites them from one walk of `latest` and sets *recounted. */
int registry_recount_types(MDB_txn *txn, const store *s, bool *recounted,
                           once_error *err);

#endif
