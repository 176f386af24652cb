/*
 * policy.c - departments, the catalogue of record types, and grants.
 *
 * Policy is data in LMDB, not configuration in memory: onced reads it inside
 * each request's read transaction, and oncectl writes it in its own write
 * transactions against the same environment. So suspending a department or
 * revoking a grant takes effect at the next request without a restart or a
 * reload signal, and there is no cache that could go stale.
 *
 * Four tables, all owned here:
 *
 *   departments      id -> once.Department
 *   department_keys  Ed25519 public key (32 bytes) -> id
 *   types            name -> once.RecordType
 *   grants           requester 0x00 type 0x00 purpose -> once.Grant
 *
 * department_keys is the index the ZAP handler needs: a CURVE handshake
 * presents a key, not an id. Keeping it a separate table (rather than
 * scanning departments) makes admission one lookup, and the add path keeps
 * both tables in step in one transaction, so a key can never belong to two
 * departments. Department ids, type names and field names follow one name
 * rule (policy_valid_name) that excludes 0x00, which is why the grant key
 * can separate its parts with it and still sort by requester, then type,
 * then purpose, which is the order `oncectl grant list` prints.
 *
 * The getters run on the broker's hot path, several per request, and a
 * record type with 64 fields decodes into some seventy separate protobuf-c
 * allocations. So stored messages are decoded into an arena (arena.c) that
 * carves from a buffer on the stack and falls back to malloc only for a value
 * larger than any valid one; the decoded message is copied into the
 * caller's fixed-size struct and the arena reset. Every stored value is
 * checked against the structs' bounds while copying: a corrupt or foreign
 * value is reported, never written past an array.
 *
 * Names and purposes that came off the wire are echoed in error messages
 * only once they are known to be well formed, so a client cannot write
 * control characters into the broker's log through a refusal.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "arena.h"
#include "envelope.h"
#include "once.pb-c.h"
#include "policy.h"
#include "record_internal.h"
#include "text_check.h"

/* Larger than the decoded form of any valid stored value: a record type at
 * its limits is 80 strings of at most 65 bytes plus two pointer arrays. */
#define DECODE_ARENA_BYTES 16384

/* requester 0x00 type 0x00 purpose */
#define GRANT_KEY_MAX (ONCE_MAX_NAME + 1 + ONCE_MAX_NAME + 1 + ONCE_MAX_PURPOSE)

/* A decoding arena on the stack (arena.c): its block, and the allocator
 * protobuf-c is given. decode_arena_end gives back, at once, all that the
 * message decoded into it held, including what did not fit in the block. */
typedef struct decode_arena {
    alignas(max_align_t) uint8_t block[DECODE_ARENA_BYTES];
    arena arena;
    ProtobufCAllocator alloc;
} decode_arena;

static ProtobufCAllocator *decode_arena_start(decode_arena *d)
{
    arena_init(&d->arena, d->block, sizeof(d->block));
    d->alloc = arena_allocator(&d->arena);
    return &d->alloc;
}

static void decode_arena_end(decode_arena *d)
{
    arena_reset(&d->arena);
}

bool policy_valid_name(const char *name)
{
    return record_name_is_valid(name);
}

/* Copies a decoded string into a fixed array; false if it does not fit. */
static bool copy_bounded(char *dst, size_t cap, const char *src)
{
    size_t len = strnlen(src, cap);

    if (len >= cap)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* Stores a message as the value of key, packing it straight into the map
 * (MDB_RESERVE) instead of into a temporary buffer. Returns the LMDB code;
 * MDB_KEYEXIST with MDB_NOOVERWRITE is left to the caller. */
static int put_message(MDB_txn *txn, MDB_dbi dbi, MDB_val *key,
                       const ProtobufCMessage *m, unsigned flags)
{
    MDB_val val;
    int rc;

    val.mv_size = protobuf_c_message_get_packed_size(m);
    val.mv_data = NULL;
    rc = mdb_put(txn, dbi, key, &val, flags | MDB_RESERVE);
    if (rc == MDB_SUCCESS)
        protobuf_c_message_pack(m, val.mv_data);
    return rc;
}

static MDB_val string_val(const char *s)
{
    MDB_val v = { strlen(s), (void *)s };

    return v;
}

/* ---- departments ------------------------------------------------------ */

/* The list functions' callback, whichever the table. */
typedef struct list_call {
    union {
        int (*department)(const department *d, void *arg);
        int (*type)(const record_type *t, void *arg);
        int (*grant)(const grant *g, void *arg);
    } fn;
    void *arg;
} list_call;

/* A walk's visit of each value, and what it needs beside the value. */
typedef struct table_visit {
    int (*visit)(const MDB_val *val, const list_call *call,
                 once_error *err);
    const list_call *call;
    once_error *err;
} table_visit;

static int visit_value(const MDB_val *key, const MDB_val *val, void *arg)
{
    const table_visit *v = arg;

    (void)key;
    return v->visit(val, v->call, v->err);
}

/* Calls visit for every value of a table in key order; a non-zero return
 * from visit stops the walk and is returned. The list functions pass a
 * NULL visit when their caller gave no callback. */
static int walk_table(MDB_txn *txn, MDB_dbi dbi, const char *what,
                      int (*visit)(const MDB_val *val, const list_call *call,
                                   once_error *err),
                      const list_call *call, once_error *err)
{
    table_visit v = { visit, call, err };

    if (visit == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no callback");
    return store_walk(txn, dbi, NULL, 0, visit_value, &v, what, err);
}

static int decode_department(const MDB_val *val, department *out,
                             once_error *err)
{
    decode_arena arena;
    ProtobufCAllocator *alloc = decode_arena_start(&arena);
    Once__Department *m;
    bool ok;

    m = once__department__unpack(alloc, val->mv_size, val->mv_data);
    if (m == NULL) {
        decode_arena_end(&arena);
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored department does not decode");
    }
    ok = copy_bounded(out->id, sizeof(out->id), m->id) &&
         copy_bounded(out->name, sizeof(out->name), m->name) &&
         m->public_key.len == ONCE_PUBLIC_KEY_BYTES &&
         (m->status == ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_ACTIVE ||
          m->status == ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_SUSPENDED);
    if (ok) {
        memcpy(out->public_key, m->public_key.data, ONCE_PUBLIC_KEY_BYTES);
        out->status = m->status ==
                              ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_ACTIVE
                          ? DEPARTMENT_ACTIVE
                          : DEPARTMENT_SUSPENDED;
        out->created_at = m->created_at;
        out->changed_at = m->changed_at;
    }
    decode_arena_end(&arena);
    if (!ok)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored department is corrupt");
    return 0;
}

int policy_department_add(MDB_txn *txn, const store *s, const char *id,
                          const char *name,
                          const uint8_t public_key[ONCE_PUBLIC_KEY_BYTES],
                          once_error *err)
{
    Once__Department m = ONCE__DEPARTMENT__INIT;
    uint8_t curve[crypto_scalarmult_curve25519_BYTES];
    MDB_val key, pk_key, val;
    uint64_t now;
    int rc;

    if (!policy_valid_name(id))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "invalid department id: use 1 to %d characters "
                              "of a-z 0-9 . _ - starting with a letter or "
                              "digit", ONCE_MAX_NAME);
    if (name == NULL)
        name = "";
    if (!text_is_clean_string(name, POLICY_MAX_DEPT_NAME))
        return once_error_set(err, ONCE_ERR_INVALID_TEXT,
                              "invalid department name: at most %d bytes of "
                              "UTF-8 text without control characters",
                              POLICY_MAX_DEPT_NAME);
    /* The broker derives the department's CURVE key from this one. */
    if (public_key == NULL ||
        crypto_sign_ed25519_pk_to_curve25519(curve, public_key) != 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "not a valid Ed25519 public key");

    key = string_val(id);
    rc = mdb_get(txn, s->departments, &key, &val);
    if (rc == MDB_SUCCESS)
        return once_error_set(err, ONCE_ERR_EXISTS,
                              "department %s already exists", id);
    if (rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read departments", err);
    pk_key.mv_size = ONCE_PUBLIC_KEY_BYTES;
    pk_key.mv_data = (void *)public_key;
    rc = mdb_get(txn, s->department_keys, &pk_key, &val);
    if (rc == MDB_SUCCESS)
        return once_error_set(err, ONCE_ERR_EXISTS,
                              "that public key already belongs to "
                              "department %.*s", (int)val.mv_size,
                              (const char *)val.mv_data);
    if (rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read department keys", err);

    now = once_now_ms();
    m.id = (char *)id;
    m.name = (char *)name;
    m.public_key.len = ONCE_PUBLIC_KEY_BYTES;
    m.public_key.data = (uint8_t *)public_key;
    m.status = ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_ACTIVE;
    m.created_at = now;
    m.changed_at = now;
    rc = put_message(txn, s->departments, &key, &m.base, MDB_NOOVERWRITE);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the department", err);
    val = string_val(id);
    rc = mdb_put(txn, s->department_keys, &pk_key, &val, MDB_NOOVERWRITE);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the department's key", err);
    return 0;
}

int policy_department_get(MDB_txn *txn, const store *s, const char *id,
                          department *out, once_error *err)
{
    MDB_val key, val;
    int rc;

    if (!policy_valid_name(id))
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                              "not a valid department id");
    key = string_val(id);
    rc = mdb_get(txn, s->departments, &key, &val);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                              "department %s is not registered", id);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read departments", err);
    return out != NULL ? decode_department(&val, out, err) : 0;
}

int policy_department_by_key(MDB_txn *txn, const store *s,
                             const uint8_t public_key[ONCE_PUBLIC_KEY_BYTES],
                             department *out, once_error *err)
{
    char id[ONCE_MAX_NAME + 1];
    char hex[17];
    MDB_val key, val;
    int rc;

    if (public_key == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no public key");
    key.mv_size = ONCE_PUBLIC_KEY_BYTES;
    key.mv_data = (void *)public_key;
    rc = mdb_get(txn, s->department_keys, &key, &val);
    if (rc == MDB_NOTFOUND) {
        once_hex_encode(hex, public_key, 8);
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                              "no department holds the key %s...", hex);
    }
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read department keys", err);
    if (val.mv_size == 0 || val.mv_size > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored department key entry is corrupt");
    memcpy(id, val.mv_data, val.mv_size);
    id[val.mv_size] = '\0';
    return policy_department_get(txn, s, id, out, err);
}

int policy_department_set_status(MDB_txn *txn, const store *s, const char *id,
                                 department_status status, once_error *err)
{
    decode_arena arena;
    ProtobufCAllocator *alloc = decode_arena_start(&arena);
    Once__Department *m;
    Once__DepartmentStatus wanted;
    MDB_val key, val;
    int rc;

    if (status == DEPARTMENT_ACTIVE)
        wanted = ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_ACTIVE;
    else if (status == DEPARTMENT_SUSPENDED)
        wanted = ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_SUSPENDED;
    else
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "unknown department status %d", (int)status);
    if (!policy_valid_name(id))
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                              "not a valid department id");
    key = string_val(id);
    rc = mdb_get(txn, s->departments, &key, &val);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                              "department %s is not registered", id);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read departments", err);

    m = once__department__unpack(alloc, val.mv_size, val.mv_data);
    if (m == NULL) {
        decode_arena_end(&arena);
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "stored department %s does not decode", id);
    }
    rc = MDB_SUCCESS;
    /* Setting the status it already has changes nothing, not even the
     * time of the last change. */
    if (m->status != wanted) {
        m->status = wanted;
        m->changed_at = once_now_ms();
        rc = put_message(txn, s->departments, &key, &m->base, 0);
    }
    decode_arena_end(&arena);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the department", err);
    return 0;
}

static int visit_department(const MDB_val *val, const list_call *call,
                            once_error *err)
{
    department d;
    int rc = decode_department(val, &d, err);

    return rc != 0 ? rc : call->fn.department(&d, call->arg);
}

int policy_department_list(MDB_txn *txn, const store *s,
                           int (*fn)(const department *d, void *arg),
                           void *arg, once_error *err)
{
    list_call call = { .fn.department = fn, .arg = arg };

    return walk_table(txn, s->departments, "cannot list departments",
                      fn != NULL ? visit_department : NULL, &call, err);
}

/* ---- record types ----------------------------------------------------- */

static int decode_type(const MDB_val *val, record_type *out, once_error *err)
{
    decode_arena arena;
    ProtobufCAllocator *alloc = decode_arena_start(&arena);
    Once__RecordType *m;
    bool ok;
    size_t i;

    m = once__record_type__unpack(alloc, val->mv_size, val->mv_data);
    if (m == NULL) {
        decode_arena_end(&arena);
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored record type does not decode");
    }
    ok = copy_bounded(out->name, sizeof(out->name), m->name) &&
         m->n_issuers <= POLICY_MAX_ISSUERS &&
         m->n_fields <= ONCE_MAX_FIELDS &&
         (m->subject_kind == ONCE__SUBJECT_KIND__SUBJECT_KIND_ENTERPRISE ||
          m->subject_kind == ONCE__SUBJECT_KIND__SUBJECT_KIND_PERSON);
    for (i = 0; ok && i < m->n_issuers; i++)
        ok = copy_bounded(out->issuers[i], sizeof(out->issuers[i]),
                          m->issuers[i]);
    for (i = 0; ok && i < m->n_fields; i++)
        ok = copy_bounded(out->fields[i], sizeof(out->fields[i]),
                          m->fields[i]);
    if (ok) {
        out->issuer_count = m->n_issuers;
        out->field_count = m->n_fields;
        out->subject_kind =
            m->subject_kind == ONCE__SUBJECT_KIND__SUBJECT_KIND_ENTERPRISE
                ? ONCE_SUBJECT_ENTERPRISE
                : ONCE_SUBJECT_PERSON;
        out->created_at = m->created_at;
    }
    decode_arena_end(&arena);
    if (!ok)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored record type is corrupt");
    return 0;
}

/* Checks a list of names: each valid, none twice. `what` names the list in
 * the message ("field", "issuer"). */
static bool names_contain(const char (*names)[ONCE_MAX_NAME + 1],
                          size_t count, const char *name)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static int check_names(const char (*names)[ONCE_MAX_NAME + 1], size_t count,
                       const char *what, once_error *err)
{
    size_t i;

    for (i = 0; i < count; i++) {
        if (!policy_valid_name(names[i]))
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "invalid %s name: use 1 to %d characters "
                                  "of a-z 0-9 . _ - starting with a letter "
                                  "or digit", what, ONCE_MAX_NAME);
        if (names_contain(names, i, names[i]))
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "%s %s is listed twice", what, names[i]);
    }
    return 0;
}

int policy_type_add(MDB_txn *txn, const store *s, const record_type *t,
                    once_error *err)
{
    Once__RecordType m = ONCE__RECORD_TYPE__INIT;
    char *issuers[POLICY_MAX_ISSUERS];
    char *fields[ONCE_MAX_FIELDS];
    MDB_val key;
    size_t i;
    int rc;

    if (t == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "no record type");
    if (!policy_valid_name(t->name))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "invalid record type name: use 1 to %d "
                              "characters of a-z 0-9 . _ - starting with a "
                              "letter or digit", ONCE_MAX_NAME);
    if (t->issuer_count == 0 || t->issuer_count > POLICY_MAX_ISSUERS)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record type has 1 to %d issuers",
                              POLICY_MAX_ISSUERS);
    if (t->field_count > ONCE_MAX_FIELDS)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record type has at most %d fields",
                              ONCE_MAX_FIELDS);
    if (t->subject_kind != ONCE_SUBJECT_ENTERPRISE &&
        t->subject_kind != ONCE_SUBJECT_PERSON)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record type's subject is an enterprise or a "
                              "person");
    rc = check_names(t->issuers, t->issuer_count, "issuer", err);
    if (rc == 0)
        rc = check_names(t->fields, t->field_count, "field", err);
    if (rc < 0)
        return rc;
    for (i = 0; i < t->issuer_count; i++) {
        rc = policy_department_get(txn, s, t->issuers[i], NULL, err);
        if (rc == -ONCE_ERR_UNKNOWN_SENDER)
            return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                                  "issuer %s is not a registered department",
                                  t->issuers[i]);
        if (rc < 0)
            return rc;
    }

    for (i = 0; i < t->issuer_count; i++)
        issuers[i] = (char *)t->issuers[i];
    for (i = 0; i < t->field_count; i++)
        fields[i] = (char *)t->fields[i];
    m.name = (char *)t->name;
    m.n_issuers = t->issuer_count;
    m.issuers = issuers;
    m.subject_kind = t->subject_kind == ONCE_SUBJECT_ENTERPRISE
                         ? ONCE__SUBJECT_KIND__SUBJECT_KIND_ENTERPRISE
                         : ONCE__SUBJECT_KIND__SUBJECT_KIND_PERSON;
    m.n_fields = t->field_count;
    m.fields = fields;
    m.created_at = once_now_ms();
    key = string_val(t->name);
    rc = put_message(txn, s->types, &key, &m.base, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return once_error_set(err, ONCE_ERR_EXISTS,
                              "record type %s already exists", t->name);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the record type", err);
    return 0;
}

int policy_type_get(MDB_txn *txn, const store *s, const char *name,
                    record_type *out, once_error *err)
{
    MDB_val key, val;
    int rc;

    if (!policy_valid_name(name))
        return once_error_set(err, ONCE_ERR_UNKNOWN_TYPE,
                              "not a valid record type name");
    key = string_val(name);
    rc = mdb_get(txn, s->types, &key, &val);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_UNKNOWN_TYPE,
                              "record type %s is not in the catalogue", name);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read record types", err);
    return out != NULL ? decode_type(&val, out, err) : 0;
}

static int visit_type(const MDB_val *val, const list_call *call,
                      once_error *err)
{
    record_type t;
    int rc = decode_type(val, &t, err);

    return rc != 0 ? rc : call->fn.type(&t, call->arg);
}

int policy_type_list(MDB_txn *txn, const store *s,
                     int (*fn)(const record_type *t, void *arg), void *arg,
                     once_error *err)
{
    list_call call = { .fn.type = fn, .arg = arg };

    return walk_table(txn, s->types, "cannot list record types",
                      fn != NULL ? visit_type : NULL, &call, err);
}

bool policy_type_has_issuer(const record_type *t, const char *department_id)
{
    return names_contain(t->issuers, t->issuer_count, department_id);
}

bool policy_type_has_field(const record_type *t, const char *field)
{
    return names_contain(t->fields, t->field_count, field);
}

/* ---- grants ------------------------------------------------------------ */

typedef struct grant_key {
    uint8_t bytes[GRANT_KEY_MAX];
    MDB_val val;
} grant_key;

/* Builds the key of (requester, type, purpose); false when a part is not
 * well formed, which no stored grant can match. */
static bool make_grant_key(grant_key *k, const char *requester,
                           const char *type, const char *purpose)
{
    size_t lr, lt, lp;

    if (!policy_valid_name(requester) || !policy_valid_name(type) ||
        purpose == NULL || purpose[0] == '\0' ||
        !text_is_clean_string(purpose, ONCE_MAX_PURPOSE))
        return false;
    lr = strlen(requester);
    lt = strlen(type);
    lp = strlen(purpose);
    memcpy(k->bytes, requester, lr);
    k->bytes[lr] = 0;
    memcpy(k->bytes + lr + 1, type, lt);
    k->bytes[lr + 1 + lt] = 0;
    memcpy(k->bytes + lr + 1 + lt + 1, purpose, lp);
    k->val.mv_size = lr + 1 + lt + 1 + lp;
    k->val.mv_data = k->bytes;
    return true;
}

static int decode_grant(const MDB_val *val, grant *out, once_error *err)
{
    decode_arena arena;
    ProtobufCAllocator *alloc = decode_arena_start(&arena);
    Once__Grant *m;
    bool ok;
    size_t i;

    m = once__grant__unpack(alloc, val->mv_size, val->mv_data);
    if (m == NULL) {
        decode_arena_end(&arena);
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored grant does not decode");
    }
    ok = copy_bounded(out->requester, sizeof(out->requester), m->requester) &&
         copy_bounded(out->type, sizeof(out->type), m->type) &&
         copy_bounded(out->purpose, sizeof(out->purpose), m->purpose) &&
         m->n_fields <= ONCE_MAX_FIELDS;
    for (i = 0; ok && i < m->n_fields; i++)
        ok = copy_bounded(out->fields[i], sizeof(out->fields[i]),
                          m->fields[i]);
    if (ok) {
        out->field_count = m->n_fields;
        out->created_at = m->created_at;
    }
    decode_arena_end(&arena);
    if (!ok)
        return once_error_set(err, ONCE_ERR_INTERNAL,
                              "a stored grant is corrupt");
    return 0;
}

int policy_grant_add(MDB_txn *txn, const store *s, const grant *g,
                     once_error *err)
{
    Once__Grant m = ONCE__GRANT__INIT;
    char *fields[ONCE_MAX_FIELDS];
    record_type t;
    grant_key k;
    size_t i;
    int rc;

    if (g == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "no grant");
    if (g->purpose[0] == '\0')
        return once_error_set(err, ONCE_ERR_MISSING_PURPOSE,
                              "a grant needs a purpose");
    if (!text_is_clean_string(g->purpose, ONCE_MAX_PURPOSE))
        return once_error_set(err, ONCE_ERR_INVALID_TEXT,
                              "invalid purpose: at most %d bytes of UTF-8 "
                              "text without control characters",
                              ONCE_MAX_PURPOSE);
    if (g->field_count > ONCE_MAX_FIELDS)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a grant has at most %d fields",
                              ONCE_MAX_FIELDS);
    rc = policy_department_get(txn, s, g->requester, NULL, err);
    if (rc == -ONCE_ERR_UNKNOWN_SENDER && policy_valid_name(g->requester))
        return once_error_set(err, ONCE_ERR_UNKNOWN_SENDER,
                              "requester %s is not a registered department",
                              g->requester);
    if (rc < 0)
        return rc;
    rc = policy_type_get(txn, s, g->type, &t, err);
    if (rc < 0)
        return rc;
    rc = check_names(g->fields, g->field_count, "field", err);
    if (rc < 0)
        return rc;
    for (i = 0; i < g->field_count; i++)
        if (!policy_type_has_field(&t, g->fields[i]))
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "%s is not a field of record type %s",
                                  g->fields[i], t.name);

    if (!make_grant_key(&k, g->requester, g->type, g->purpose))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the grant's requester, type or purpose is "
                              "not well formed");
    for (i = 0; i < g->field_count; i++)
        fields[i] = (char *)g->fields[i];
    m.requester = (char *)g->requester;
    m.type = (char *)g->type;
    m.purpose = (char *)g->purpose;
    m.n_fields = g->field_count;
    m.fields = fields;
    m.created_at = once_now_ms();
    rc = put_message(txn, s->grants, &k.val, &m.base, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return once_error_set(err, ONCE_ERR_EXISTS,
                              "%s already has a grant on %s for purpose "
                              "\"%s\"; revoke it first to change its fields",
                              g->requester, g->type, g->purpose);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot store the grant", err);
    return 0;
}

int policy_grant_get(MDB_txn *txn, const store *s, const char *requester,
                     const char *type, const char *purpose, grant *out,
                     once_error *err)
{
    grant_key k;
    MDB_val val;
    int rc;

    if (!make_grant_key(&k, requester, type, purpose))
        return once_error_set(err, ONCE_ERR_NO_GRANT,
                              "no grant for this requester, record type and "
                              "purpose");
    rc = mdb_get(txn, s->grants, &k.val, &val);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NO_GRANT,
                              "%s has no grant on %s for purpose \"%s\"",
                              requester, type, purpose);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read grants", err);
    return out != NULL ? decode_grant(&val, out, err) : 0;
}

int policy_grant_covers_type(MDB_txn *txn, const store *s,
                             const char *requester, const char *type,
                             once_error *err)
{
    uint8_t prefix[2 * ONCE_MAX_NAME + 2];
    size_t lr, lt;
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if (!policy_valid_name(requester) || !policy_valid_name(type))
        return once_error_set(err, ONCE_ERR_NO_GRANT, "no grant for this "
                              "requester and record type");
    lr = strlen(requester);
    lt = strlen(type);
    memcpy(prefix, requester, lr);
    prefix[lr] = 0;
    memcpy(prefix + lr + 1, type, lt);
    prefix[lr + 1 + lt] = 0;
    rc = mdb_cursor_open(txn, s->grants, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read grants", err);
    key.mv_size = lr + lt + 2;
    key.mv_data = prefix;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND ||
        (rc == MDB_SUCCESS && (key.mv_size < lr + lt + 2 ||
                               memcmp(key.mv_data, prefix, lr + lt + 2) != 0)))
        return once_error_set(err, ONCE_ERR_NO_GRANT, "%s has no grant on %s",
                              requester, type);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read grants", err);
    return 0;
}

int policy_grant_revoke(MDB_txn *txn, const store *s, const char *requester,
                        const char *type, const char *purpose,
                        once_error *err)
{
    grant_key k;
    int rc;

    if (!make_grant_key(&k, requester, type, purpose))
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "no such grant: the requester, type or purpose "
                              "is not well formed");
    rc = mdb_del(txn, s->grants, &k.val, NULL);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND,
                              "%s has no grant on %s for purpose \"%s\"",
                              requester, type, purpose);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot delete the grant", err);
    return 0;
}

static int visit_grant(const MDB_val *val, const list_call *call,
                       once_error *err)
{
    grant g;
    int rc = decode_grant(val, &g, err);

    return rc != 0 ? rc : call->fn.grant(&g, call->arg);
}

int policy_grant_list(MDB_txn *txn, const store *s,
                      int (*fn)(const grant *g, void *arg), void *arg,
                      once_error *err)
{
    list_call call = { .fn.grant = fn, .arg = arg };

    return walk_table(txn, s->grants, "cannot list grants",
                      fn != NULL ? visit_grant : NULL, &call, err);
}

bool policy_grant_allows_field(const grant *g, const char *field)
{
    return names_contain(g->fields, g->field_count, field);
}
