/*
 * registry.c - the records database: every version of every record.
 *
 * Two tables. `records` holds every version ever published, keyed
 *
 *     u8 len(type) || type || u8 len(subject) || subject || u64be version
 *
 * and `latest` maps the same key without the version to the highest version
 * (u64be). The length bytes make the (type, subject) part of the key a
 * prefix that no other pair shares ("ab"+"c" and "a"+"bc" differ in their
 * first byte), and the big-endian version makes LMDB's byte order the
 * numeric order, so one cursor range walks a record's history oldest first
 * and one seek finds its newest version. Requests read only `records`
 * (read_newest says why); `latest` makes "is this version above the
 * latest" one small lookup on the publish path and counts the records.
 *
 * Versions only grow: a publish at or below the latest version is refused,
 * so an old record replayed by anyone -- including its own issuer -- can
 * never become current again, and a revocation (a higher version with the
 * REVOKED status) cannot be undone by re-sending the valid record.
 *
 * Values are serialized once.StoredRecord messages and opaque here: this
 * module neither decodes nor re-encodes them, so the issuer's signed header
 * reaches a requester byte for byte. Reads return pointers into the map
 * (valid for the read transaction) and allocate nothing of their own; a
 * read by cursor (a request for the newest version, a history) takes
 * LMDB's cursor and closes it before returning.
 *
 * A third table, `record_counts`, holds the number of records (type,
 * subject) of each type, u64be under u8 len(type) || type (the order of
 * `latest`), bumped in the transaction that stores a record's first
 * version: the count is exactly as durable as the records, a crash keeps
 * or loses both. onced reports it per type (once_records{type},
 * metrics.c) and used to count it at start by walking all of `latest`,
 * some 6 s of CPU at ten million records; reading the counts costs one
 * entry a type. The counts must add up to the entries of `latest`, which
 * LMDB keeps in the table's header: when they do not (a home made before
 * the table existed, or records stored by an older program that did not
 * bump it), registry_count_types walks `latest` instead and
 * registry_recount_types, which onced runs at start, rewrites the table
 * from that walk; so it does with counts that do not decode. Records are
 * never deleted, so a count only ever grows.
 *
 * Subjects are credit codes and ID numbers. They appear in keys, never in
 * error messages, which the broker logs. Types must follow the catalogue's
 * name rule (policy_valid_name), the one thing borrowed from policy.c.
 */
#include <string.h>

#include "policy.h"
#include "registry.h"

/* u8 len, type, u8 len, subject, u64be version. */
#define REGISTRY_KEY_MAX (1 + ONCE_MAX_NAME + 1 + ONCE_MAX_SUBJECT + 8)

#define LATEST_NONE 1

typedef struct record_key {
    uint8_t bytes[REGISTRY_KEY_MAX];
    size_t prefix_len; /* the (type, subject) part, the `latest` key */
} record_key;

/* Builds the key of (type, subject) with room for a version after it. */
static int make_key(record_key *k, const char *type, const char *subject,
                    once_error *err)
{
    size_t lt, ls;

    if (type == NULL || subject == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record type and a subject are required");
    /* Record types are catalogue names; checking the rule here also makes
     * the type safe to name in error messages. */
    if (!policy_valid_name(type))
        return once_error_set(err, ONCE_ERR_UNKNOWN_TYPE,
                              "not a valid record type name");
    lt = strlen(type);
    ls = strnlen(subject, ONCE_MAX_SUBJECT + 1);
    if (ls == 0 || ls > ONCE_MAX_SUBJECT)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "a subject has 1 to %d characters",
                              ONCE_MAX_SUBJECT);
    k->bytes[0] = (uint8_t)lt;
    memcpy(k->bytes + 1, type, lt);
    k->bytes[1 + lt] = (uint8_t)ls;
    memcpy(k->bytes + 2 + lt, subject, ls);
    k->prefix_len = 2 + lt + ls;
    return 0;
}

/* The latest version of k's record: 0 when found, LATEST_NONE when there
 * is none, or a negative once error. (LMDB's own codes are negative too, so
 * MDB_NOTFOUND cannot be handed up as is.) */
static int read_latest(MDB_txn *txn, const store *s, const record_key *k,
                       uint64_t *version, once_error *err)
{
    MDB_val key = { k->prefix_len, (void *)k->bytes };
    MDB_val val;
    int rc;

    rc = mdb_get(txn, s->latest, &key, &val);
    if (rc == MDB_NOTFOUND)
        return LATEST_NONE;
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read a record's latest version", err);
    if (val.mv_size != 8)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "the latest-version entry of a record is "
                              "corrupt (%zu bytes)", val.mv_size);
    *version = store_get_u64be(val.mv_data);
    return 0;
}

/* The key of type's count in `record_counts`: u8 len(type) || type, as
 * its records' keys start, so the counts come in the order of a walk of
 * `latest`. */
static MDB_val count_key(uint8_t buf[1 + ONCE_MAX_NAME], const char *type)
{
    size_t len = strlen(type);
    MDB_val key = { 1 + len, buf };

    buf[0] = (uint8_t)len;
    memcpy(buf + 1, type, len);
    return key;
}

/* Adds one to the stored count of type's records (a valid type name). */
static int count_add(MDB_txn *txn, const store *s, const char *type,
                     once_error *err)
{
    uint8_t key_buf[1 + ONCE_MAX_NAME];
    MDB_val key = count_key(key_buf, type);
    MDB_val val;
    uint8_t count_be[8];
    uint64_t count = 0;
    int rc;

    rc = mdb_get(txn, s->record_counts, &key, &val);
    if (rc == MDB_SUCCESS && val.mv_size == 8)
        count = store_get_u64be(val.mv_data);
    else if (rc == MDB_SUCCESS)
        return once_error_set(err, ONCE_ERR_INTERNAL, "the stored count of "
                              "%s records is corrupt (%zu bytes)", type,
                              val.mv_size);
    else if (rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read a record count", err);
    store_put_u64be(count_be, count + 1);
    val.mv_size = sizeof(count_be);
    val.mv_data = count_be;
    rc = mdb_put(txn, s->record_counts, &key, &val, 0);
    return store_error(rc, "cannot store a record count", err);
}

int registry_put_record(MDB_txn *txn, const store *s, const char *type,
                        const char *subject, uint64_t version,
                        const uint8_t *stored, size_t stored_len,
                        bool *created, once_error *err)
{
    record_key k;
    uint8_t version_be[8];
    uint64_t latest;
    MDB_val key, val;
    int rc, latest_rc;

    rc = make_key(&k, type, subject, err);
    if (rc < 0)
        return rc;
    if (version == 0)
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "record versions start at 1");
    if (stored == NULL && stored_len != 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no stored record bytes");
    latest_rc = rc = read_latest(txn, s, &k, &latest, err);
    if (rc < 0)
        return rc;
    if (rc == 0 && version <= latest)
        return once_error_set(err, ONCE_ERR_STALE_VERSION,
                              "version %llu of this %s record is not above "
                              "the latest, %llu", (unsigned long long)version,
                              type, (unsigned long long)latest);

    store_put_u64be(k.bytes + k.prefix_len, version);
    key.mv_size = k.prefix_len + 8;
    key.mv_data = k.bytes;
    val.mv_size = stored_len;
    val.mv_data = (void *)stored;
    rc = mdb_put(txn, s->records, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "version %llu of this %s record is stored but "
                              "its latest entry is older: the registry is "
                              "inconsistent", (unsigned long long)version,
                              type);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store a record", err);

    store_put_u64be(version_be, version);
    key.mv_size = k.prefix_len;
    val.mv_size = sizeof(version_be);
    val.mv_data = version_be;
    rc = mdb_put(txn, s->latest, &key, &val, 0);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store a record's latest version", err);
    if (latest_rc == LATEST_NONE && (rc = count_add(txn, s, type, err)) < 0)
        return rc;
    if (created != NULL)
        *created = latest_rc == LATEST_NONE;
    return 0;
}

int registry_latest_version(MDB_txn *txn, const store *s, const char *type,
                            const char *subject, uint64_t *version,
                            once_error *err)
{
    record_key k;
    int rc;

    if (version == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no version output");
    rc = make_key(&k, type, subject, err);
    if (rc < 0)
        return rc;
    rc = read_latest(txn, s, &k, version, err);
    if (rc == LATEST_NONE)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no %s record for this subject", type);
    return rc;
}

/* The newest version of k's record, from `records` alone: one descent to
 * the first key at or past (prefix, version 2^64-1), which is that version
 * itself if it is stored, else the next record's first key or the end of
 * the table, and one step back to the record's newest version. `latest`
 * would say the same, but it is a second B-tree: in a large registry a
 * second page that is rarely in the CPU's caches or in the process's page
 * tables, so reading both costs a request about twice the misses
 * (docs/PERFORMANCE.md, "Scale of the registry"). */
static int read_newest(MDB_txn *txn, const store *s, record_key *k,
                       const char *type, MDB_val *value,
                       uint64_t *version_out, once_error *err)
{
    MDB_cursor *cur;
    MDB_val key;
    int rc;

    store_put_u64be(k->bytes + k->prefix_len, UINT64_MAX);
    key.mv_size = k->prefix_len + 8;
    key.mv_data = k->bytes;
    rc = mdb_cursor_open(txn, s->records, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read a record", err);
    rc = mdb_cursor_get(cur, &key, value, MDB_SET_RANGE);
    if (rc == MDB_SUCCESS && (key.mv_size != k->prefix_len + 8 ||
                              memcmp(key.mv_data, k->bytes,
                                     k->prefix_len + 8) != 0))
        rc = mdb_cursor_get(cur, &key, value, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &key, value, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read a record", err);
    if (rc == MDB_NOTFOUND || key.mv_size != k->prefix_len + 8 ||
        memcmp(key.mv_data, k->bytes, k->prefix_len) != 0)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no %s record for this subject", type);
    if (version_out != NULL)
        *version_out = store_get_u64be((const uint8_t *)key.mv_data +
                                       k->prefix_len);
    return 0;
}

int registry_get_record(MDB_txn *txn, const store *s, const char *type,
                        const char *subject, uint64_t version,
                        MDB_val *value, uint64_t *version_out,
                        once_error *err)
{
    record_key k;
    MDB_val key;
    int rc;

    if (value == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no value output");
    rc = make_key(&k, type, subject, err);
    if (rc < 0)
        return rc;
    if (version == 0)
        return read_newest(txn, s, &k, type, value, version_out, err);
    store_put_u64be(k.bytes + k.prefix_len, version);
    key.mv_size = k.prefix_len + 8;
    key.mv_data = k.bytes;
    rc = mdb_get(txn, s->records, &key, value);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no version %llu of this %s record",
                              (unsigned long long)version, type);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read a record", err);
    if (version_out != NULL)
        *version_out = version;
    return 0;
}

/* registry_history's callback and where the version sits in a key. */
typedef struct history_call {
    int (*fn)(uint64_t version, const MDB_val *value, void *arg);
    void *arg;
    size_t prefix_len;
    once_error *err;
} history_call;

/* The walk stays within the record's keys, whose (type, subject) part
 * has the length bytes in it: each is that part and a version. */
static int visit_version(const MDB_val *key, const MDB_val *val, void *arg)
{
    const history_call *h = arg;

    if (key->mv_size != h->prefix_len + 8)
        return once_error_set(h->err, ONCE_ERR_INTERNAL, "a key of the "
                              "registry is corrupt");
    return h->fn(store_get_u64be((const uint8_t *)key->mv_data +
                                 h->prefix_len),
                 val, h->arg);
}

int registry_history(MDB_txn *txn, const store *s, const char *type,
                     const char *subject,
                     int (*fn)(uint64_t version, const MDB_val *value,
                               void *arg),
                     void *arg, once_error *err)
{
    history_call h = { fn, arg, 0, err };
    record_key k;
    MDB_val from;
    int rc;

    if (fn == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no history callback");
    rc = make_key(&k, type, subject, err);
    if (rc < 0)
        return rc;
    /* Version 0 is never stored, so the walk starts at the oldest
     * version. */
    store_put_u64be(k.bytes + k.prefix_len, 0);
    from.mv_size = k.prefix_len + 8;
    from.mv_data = k.bytes;
    h.prefix_len = k.prefix_len;
    return store_walk(txn, s->records, &from, k.prefix_len, visit_version,
                      &h, "cannot read a record's history", err);
}

int registry_count(MDB_txn *txn, const store *s, size_t *records,
                   size_t *versions, once_error *err)
{
    MDB_stat st;
    int rc;

    rc = mdb_stat(txn, s->latest, &st);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot count records", err);
    if (records != NULL)
        *records = st.ms_entries;
    rc = mdb_stat(txn, s->records, &st);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot count record versions", err);
    if (versions != NULL)
        *versions = st.ms_entries;
    return 0;
}

/* A walk of per-type counts: the caller's callback, and for the walk of
 * `latest` the type being counted. */
typedef struct type_counts {
    int (*fn)(const char *type, uint64_t records, void *arg);
    void *arg;
    char type[ONCE_MAX_NAME + 1];
    uint64_t records, sum;
    once_error *err;
} type_counts;

/* Keys start with u8 len(type) || type, so a type's records are adjacent:
 * a key of another type hands the count of the last one on. */
static int count_latest(const MDB_val *key, const MDB_val *val, void *arg)
{
    type_counts *c = arg;
    const uint8_t *b = key->mv_data;
    size_t lt = key->mv_size > 0 ? b[0] : 0;
    int rc;

    (void)val;
    if (lt == 0 || lt > ONCE_MAX_NAME || key->mv_size < 1 + lt)
        return once_error_set(c->err, ONCE_ERR_INTERNAL, "a latest-version "
                              "key of the registry is corrupt");
    if (c->records > 0 &&
        (strlen(c->type) != lt || memcmp(c->type, b + 1, lt) != 0)) {
        if ((rc = c->fn(c->type, c->records, c->arg)) != 0)
            return rc;
        c->records = 0;
    }
    memcpy(c->type, b + 1, lt);
    c->type[lt] = '\0';
    c->records++;
    return 0;
}

/* Calls fn once per type of the `latest` table, in key order, with its
 * number of records: the walk of every entry the stored counts spare. */
static int walk_latest(MDB_txn *txn, const store *s,
                       int (*fn)(const char *type, uint64_t records,
                                 void *arg),
                       void *arg, once_error *err)
{
    type_counts c = { .fn = fn, .arg = arg, .err = err };
    int rc = store_walk(txn, s->latest, NULL, 0, count_latest, &c,
                        "cannot count records", err);

    if (rc != 0)
        return rc;
    return c.records > 0 ? fn(c.type, c.records, arg) : 0;
}

static int add_count(const MDB_val *key, const MDB_val *val, void *arg)
{
    type_counts *c = arg;
    const uint8_t *b = key->mv_data;

    if (key->mv_size < 2 || b[0] != key->mv_size - 1 ||
        b[0] > ONCE_MAX_NAME || val->mv_size != 8)
        return once_error_set(c->err, ONCE_ERR_INTERNAL, "a stored record "
                              "count is corrupt");
    c->sum += store_get_u64be(val->mv_data);
    if (c->fn == NULL)
        return 0;
    memcpy(c->type, b + 1, b[0]);
    c->type[b[0]] = '\0';
    return c->fn(c->type, store_get_u64be(val->mv_data), c->arg);
}

/* Calls fn (when not NULL) for each stored count, in type order, and adds
 * them up in *sum. fn's non-zero return stops the walk and is returned. */
static int read_counts(MDB_txn *txn, const store *s,
                       int (*fn)(const char *type, uint64_t records,
                                 void *arg),
                       void *arg, uint64_t *sum, once_error *err)
{
    type_counts c = { .fn = fn, .arg = arg, .err = err };
    int rc = store_walk(txn, s->record_counts, NULL, 0, add_count, &c,
                        "cannot read the record counts", err);

    *sum = c.sum;
    return rc;
}

/* Whether the stored counts add up to the entries of `latest`. Counts
 * that do not decode do not: they are rebuilt like missing ones, since
 * the records they count are all there. */
static int counts_match(MDB_txn *txn, const store *s, bool *match,
                        once_error *err)
{
    uint64_t sum;
    MDB_stat st;
    int rc;

    *match = false;
    rc = read_counts(txn, s, NULL, NULL, &sum, err);
    if (rc == -ONCE_ERR_INTERNAL)
        return 0;
    if (rc < 0)
        return rc;
    rc = mdb_stat(txn, s->latest, &st);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot count records", err);
    *match = sum == st.ms_entries;
    return 0;
}

int registry_count_types(MDB_txn *txn, const store *s,
                         int (*fn)(const char *type, uint64_t records,
                                   void *arg),
                         void *arg, once_error *err)
{
    uint64_t sum;
    bool match;
    int rc;

    if ((rc = counts_match(txn, s, &match, err)) < 0)
        return rc;
    if (!match)
        return walk_latest(txn, s, fn, arg, err);
    return read_counts(txn, s, fn, arg, &sum, err);
}

/* Where registry_recount_types writes the counts of its walk. */
typedef struct count_target {
    MDB_txn *txn;
    const store *s;
    once_error *err;
} count_target;

static int store_count(const char *type, uint64_t records, void *arg)
{
    const count_target *to = arg;
    uint8_t key_buf[1 + ONCE_MAX_NAME];
    MDB_val key = count_key(key_buf, type);
    uint8_t count_be[8];
    MDB_val val = { sizeof(count_be), count_be };

    store_put_u64be(count_be, records);
    return store_error(mdb_put(to->txn, to->s->record_counts, &key, &val, 0),
                       "cannot store a record count", to->err);
}

int registry_recount_types(MDB_txn *txn, const store *s, bool *recounted,
                           once_error *err)
{
    count_target to = { txn, s, err };
    bool match;
    int rc;

    *recounted = false;
    if ((rc = counts_match(txn, s, &match, err)) < 0 || match)
        return rc;
    rc = mdb_drop(txn, s->record_counts, 0);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot empty the record counts", err);
    if ((rc = walk_latest(txn, s, store_count, &to, err)) < 0)
        return rc;
    *recounted = true;
    return 0;
}
