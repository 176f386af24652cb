/*
 * policy.h - departments, the catalogue of record types, and grants.
 *
 * Decides who may connect (active departments), who may publish a type
 * (its issuers) and who may read which fields of it for which purpose
 * (grants; default deny). All reads run inside the caller's LMDB
 * transaction so the broker sees oncectl's changes at once.
 */
#ifndef ONCE_POLICY_H
#define ONCE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "store.h"

#define POLICY_MAX_ISSUERS 16
#define POLICY_MAX_DEPT_NAME 128

typedef enum department_status {
    DEPARTMENT_ACTIVE = 1,
    DEPARTMENT_SUSPENDED = 2
} department_status;

typedef struct department {
    char id[ONCE_MAX_NAME + 1];
    char name[POLICY_MAX_DEPT_NAME + 1];
    uint8_t public_key[ONCE_PUBLIC_KEY_BYTES];
    department_status status;
    uint64_t created_at; /* Unix ms */
    uint64_t changed_at; /* Unix ms */
} department;

typedef struct record_type {
    char name[ONCE_MAX_NAME + 1];
    char issuers[POLICY_MAX_ISSUERS][ONCE_MAX_NAME + 1];
    size_t issuer_count;
    once_subject_kind subject_kind;
    char fields[ONCE_MAX_FIELDS][ONCE_MAX_NAME + 1];
    size_t field_count;
    uint64_t created_at;
} record_type;

typedef struct grant {
    char requester[ONCE_MAX_NAME + 1];
    char type[ONCE_MAX_NAME + 1];
    char purpose[ONCE_MAX_PURPOSE + 1];
    char fields[ONCE_MAX_FIELDS][ONCE_MAX_NAME + 1];
    size_t field_count;
    uint64_t created_at;
} grant;

/* Identifiers (department ids, type and field names): 1..64 characters of
 * [a-z0-9._-], starting with a letter or digit. */
bool policy_valid_name(const char *name);

/* Departments. add refuses an existing id (-ONCE_ERR_EXISTS) or a key that
 * another department holds. get returns -ONCE_ERR_UNKNOWN_SENDER when the id
 * is not registered; by_key likewise for an unknown key. */
int policy_department_add(MDB_txn *txn, const store *s, const char *id,
                          const char *name,
                          const uint8_t public_key[ONCE_PUBLIC_KEY_BYTES],
                          once_error *err);
int policy_department_get(MDB_txn *txn, const store *s, const char *id,
                          department *out, once_error *err);
int policy_department_by_key(MDB_txn *txn, const store *s,
                             const uint8_t public_key[ONCE_PUBLIC_KEY_BYTES],
                             department *out, once_error *err);
int policy_department_set_status(MDB_txn *txn, const store *s, const char *id,
                                 department_status status, once_error *err);
/* Calls fn for each department in id order; a non-zero return from fn stops
 * the walk and is returned. */
int policy_department_list(MDB_txn *txn, const store *s,
                           int (*fn)(const department *d, void *arg),
                           void *arg, once_error *err);

/* Record types. add refuses an existing name, no issuers, unknown issuer
 * departments, invalid field names or duplicates. get returns
 * -ONCE_ERR_UNKNOWN_TYPE when absent. */
int policy_type_add(MDB_txn *txn, const store *s, const record_type *t,
                    once_error *err);
int policy_type_get(MDB_txn *txn, const store *s, const char *name,
                    record_type *out, once_error *err);
int policy_type_list(MDB_txn *txn, const store *s,
                     int (*fn)(const record_type *t, void *arg), void *arg,
                     once_error *err);
bool policy_type_has_issuer(const record_type *t, const char *department_id);
bool policy_type_has_field(const record_type *t, const char *field);

/* Grants, keyed by (requester, type, purpose). add refuses an existing key,
 * an unknown requester or type, fields not in the type, or an empty purpose.
 * get returns -ONCE_ERR_NO_GRANT when there is none (default deny). */
int policy_grant_add(MDB_txn *txn, const store *s, const grant *g,
                     once_error *err);
int policy_grant_get(MDB_txn *txn, const store *s, const char *requester,
                     const char *type, const char *purpose, grant *out,
                     once_error *err);
/* 0 when requester holds a grant on type for some purpose, else
 * -ONCE_ERR_NO_GRANT: what notices of type may reach it (PROTOCOL.md
 * 4.9). */
int policy_grant_covers_type(MDB_txn *txn, const store *s,
                             const char *requester, const char *type,
                             once_error *err);
int policy_grant_revoke(MDB_txn *txn, const store *s, const char *requester,
                        const char *type, const char *purpose,
                        once_error *err);
int policy_grant_list(MDB_txn *txn, const store *s,
                      int (*fn)(const grant *g, void *arg), void *arg,
                      once_error *err);
bool policy_grant_allows_field(const grant *g, const char *field);

#endif
