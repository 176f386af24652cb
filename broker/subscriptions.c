/*
 * subscriptions.c - the durable state of subscriptions (docs/PROTOCOL.md
 * 4.9): who subscribed to what, the events notices are made of, which
 * records each department holds, and how far each department has
 * acknowledged.
 *
 * The log is the event stream and its leaf index the cursor. A notice is
 * derived from a committed publish or revoke leaf; but a leaf keeps only
 * the keyed hash of its subject (docs/AUDIT.md), and a notice names the
 * subject, so the writer puts one small `events` entry beside each granted
 * publish or revoke leaf, in the same transaction: leaf index -> the
 * subject hash and a Notice. One put per change, whatever the number of
 * subscribers: notices for a department are computed when they are read
 * (subscriptions_scan), by walking the events after its cursor and keeping
 * those its subscriptions match and its grants cover. So a department
 * that is slow or away costs nothing but its cursor, and catches up from
 * the table whenever it comes back; nothing is queued per department.
 *
 * "Everything this department holds a copy of" needs to know which
 * records a department was granted: `held` has (type, subject hash,
 * department) for every granted request. It is derived from the log (a
 * granted request leaf carries all three), so it need not be durable
 * before the answer, and it is not written in the request's transaction:
 * a department's first copy of a record was a random B-tree page in that
 * commit (about 7-9 us of the writer's CPU a request, docs/PERFORMANCE.md).
 * The writer keeps the entries of committed grants in memory and puts
 * them in key order (held_buffer.c): in the transaction of any group that
 * makes an event, before that group's work, so a reader of an event at
 * leaf L sees the entry of every copy granted before L; otherwise in a
 * transaction of its own within about a second. A mark, `held_through`,
 * says up to which leaf the table is complete; at start onced replays the
 * granted request leaves after it, so a kill -9 loses nothing. The puts
 * use MDB_NOOVERWRITE, with which LMDB looks the key up and returns
 * MDB_KEYEXIST before it copies (dirties) any page, so a copy held
 * already adds nothing to a commit. Deriving the entries lazily from the
 * log at each notice instead would mean walking every request leaf of the
 * department. The hash is the log's own (audit_hash.c), so the table
 * holds no subject in the clear.
 *
 * A subscription matches the events after its own subscribe leaf, not
 * the history before it; subscribing again to the same target keeps the
 * first leaf. The grants check is made when a notice is read, not only at
 * subscribe: a grant withdrawn later stops the notices of its type at
 * once, and no department learns from a notice that a subject exists
 * unless it could request it.
 *
 * Pruning. Events would otherwise pile up forever, one per change. An
 * event at or below the cursor of every department that holds a
 * subscription can reach nobody: those departments acknowledged it, and
 * a department without a subscription gets no notice of it, now or
 * later (a subscription made later matches only the events after its
 * own leaf). So subscriptions_prune deletes the events at or below the
 * lowest cursor of the departments that hold a subscription, oldest
 * first, a bounded number per call; the writer calls it in transactions
 * of its own, outside the groups it commits (notices.c). The newest
 * event always stays: an acknowledgement is checked against it, and the
 * fan-out starts from it. A pull with `after` below the department's own
 * cursor may therefore miss notices it acknowledged (PROTOCOL.md 4.9);
 * nothing above any cursor is ever deleted, so a subscriber that comes
 * back after any time gets every notice it had not acknowledged. The
 * price: a department that subscribes and never acknowledges keeps every
 * event from its cursor on (docs/OPERATIONS.md). The lowest cursor is
 * one seek per department in the subscriptions table, which is in
 * department order.
 *
 * Tables (one owner, this module):
 *   subscriptions  dept 0x00 scope(1 byte) type 0x00 subject -> Subscription
 *   notice_events  leaf index u64be -> subject hash[32] || Notice
 *   notice_held    type 0x00 subject hash[32] dept -> (empty)
 *   notice_cursors dept -> acknowledged leaf index u64be
 *   notice_marks   "held_through" -> u64be (held_buffer.c)
 */
#include "subscriptions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define SUB_KEY_MAX (ONCE_MAX_NAME + 1 + 1 + ONCE_MAX_NAME + 1 + \
                     ONCE_MAX_SUBJECT)
#define HELD_KEY_MAX SUBSCRIPTIONS_HELD_KEY_MAX
/* An event's Notice: two names and three numbers. */
#define EVENT_MAX (AUDIT_SUBJECT_HASH_BYTES + 2 * (ONCE_MAX_NAME + 2) + 40)

int subscriptions_open(subscriptions *t, const store *s, once_error *err)
{
    const struct {
        const char *name;
        MDB_dbi *dbi;
    } tables[] = {
        { "subscriptions", &t->subs },
        { "notice_events", &t->events },
        { "notice_held", &t->held },
        { "notice_cursors", &t->cursors },
        { "notice_marks", &t->marks },
    };
    MDB_txn *txn;
    size_t i;
    int rc;

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot open the subscription tables", err);
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        rc = mdb_dbi_open(txn, tables[i].name, MDB_CREATE, tables[i].dbi);
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            return store_error(rc, tables[i].name, err);
        }
    }
    return store_error(mdb_txn_commit(txn), "cannot create the subscription "
                       "tables", err);
}

/* Builds dept 0 scope type 0 subject into k; false when a part is too
 * long (nothing stored can match it). */
static bool sub_key(uint8_t k[SUB_KEY_MAX], MDB_val *v, const char *dept,
                    int scope, const char *type, const char *subject)
{
    size_t ld = strlen(dept), lt = strlen(type), ls = strlen(subject);

    if (ld > ONCE_MAX_NAME || lt > ONCE_MAX_NAME || ls > ONCE_MAX_SUBJECT ||
        scope < 1 || scope > 255)
        return false;
    memcpy(k, dept, ld);
    k[ld] = 0;
    k[ld + 1] = (uint8_t)scope;
    memcpy(k + ld + 2, type, lt);
    k[ld + 2 + lt] = 0;
    memcpy(k + ld + 3 + lt, subject, ls);
    v->mv_size = ld + 3 + lt + ls;
    v->mv_data = k;
    return true;
}

int subscriptions_put(MDB_txn *txn, const subscriptions *t, const char *dept,
                      int scope, const char *type, const char *subject,
                      uint64_t leaf_index, uint64_t created_at,
                      once_error *err)
{
    Once__Subscription m = ONCE__SUBSCRIPTION__INIT;
    uint8_t k[SUB_KEY_MAX], v[SUB_KEY_MAX + 40];
    MDB_val key, val;

    if (!sub_key(k, &key, dept, scope, type, subject))
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "a name of the "
                              "subscription is over its limit");
    if (subscriptions_get(txn, t, dept, scope, type, subject, NULL, err) == 0)
        return 0; /* renewed: it keeps the events after its first leaf */
    m.scope = (Once__SubscriptionScope)scope;
    m.type = (char *)type;
    m.subject = (char *)subject;
    m.leaf_index = leaf_index;
    m.created_at = created_at;
    val.mv_size = once__subscription__pack(&m, v);
    val.mv_data = v;
    return store_error(mdb_put(txn, t->subs, &key, &val, 0),
                       "cannot store the subscription", err);
}

int subscriptions_del(MDB_txn *txn, const subscriptions *t, const char *dept,
                      int scope, const char *type, const char *subject,
                      once_error *err)
{
    uint8_t k[SUB_KEY_MAX];
    MDB_val key;
    int rc;

    if (!sub_key(k, &key, dept, scope, type, subject))
        return once_error_set(err, ONCE_ERR_NOT_FOUND, "no such "
                              "subscription");
    rc = mdb_del(txn, t->subs, &key, NULL);
    if (rc == MDB_NOTFOUND)
        return once_error_set(err, ONCE_ERR_NOT_FOUND, "no such "
                              "subscription");
    return store_error(rc, "cannot delete the subscription", err);
}

int subscriptions_get(MDB_txn *txn, const subscriptions *t, const char *dept,
                      int scope, const char *type, const char *subject,
                      uint64_t *leaf_index, once_error *err)
{
    uint8_t k[SUB_KEY_MAX];
    Once__Subscription *m;
    MDB_val key, val;
    int rc;

    if (!sub_key(k, &key, dept, scope, type, subject))
        return -ONCE_ERR_NOT_FOUND;
    rc = mdb_get(txn, t->subs, &key, &val);
    if (rc == MDB_NOTFOUND)
        return -ONCE_ERR_NOT_FOUND;
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read subscriptions", err);
    if (leaf_index == NULL)
        return 0;
    m = once__subscription__unpack(NULL, val.mv_size, val.mv_data);
    if (m == NULL)
        return once_error_set(err, ONCE_ERR_INTERNAL, "a stored "
                              "subscription does not decode");
    *leaf_index = m->leaf_index;
    once__subscription__free_unpacked(m, NULL);
    return 0;
}

/* Walks the keys that start with prefix (all of them when plen is 0). */
static int walk_subs(MDB_txn *txn, const subscriptions *t,
                     const uint8_t *prefix, size_t plen, store_walk_fn fn,
                     void *arg, once_error *err)
{
    MDB_val from = { plen, (void *)prefix };

    return store_walk(txn, t->subs, plen > 0 ? &from : NULL, plen, fn, arg,
                      "cannot read subscriptions", err);
}

typedef struct count_arg {
    size_t n, max;
} count_arg;

static int count_one(const MDB_val *key, const MDB_val *val, void *arg)
{
    count_arg *c = arg;

    (void)key;
    (void)val;
    return ++c->n > c->max ? 1 : 0;
}

static size_t dept_prefix(uint8_t *p, const char *dept)
{
    size_t ld = strlen(dept);

    if (ld > ONCE_MAX_NAME)
        ld = ONCE_MAX_NAME;
    memcpy(p, dept, ld);
    p[ld] = 0;
    return ld + 1;
}

int subscriptions_count(MDB_txn *txn, const subscriptions *t,
                        const char *dept, size_t max, size_t *n,
                        once_error *err)
{
    uint8_t prefix[ONCE_MAX_NAME + 1];
    count_arg c = { 0, max };
    int rc = walk_subs(txn, t, prefix, dept_prefix(prefix, dept), count_one,
                       &c, err);

    *n = c.n;
    return rc < 0 ? rc : 0;
}

typedef struct list_arg {
    int (*fn)(const char *dept, const Once__Subscription *s, void *arg);
    void *arg;
    int rc;
    once_error *err;
} list_arg;

/* The department a subscription's key starts with (dept 0 ...), into
 * dept, and its length; an error when the key has no 0 after a name
 * within its limit. */
static int key_dept(const MDB_val *key, char dept[ONCE_MAX_NAME + 1],
                    size_t *ld, once_error *err)
{
    const uint8_t *zero = memchr(key->mv_data, 0, key->mv_size);

    *ld = zero != NULL ? (size_t)(zero - (const uint8_t *)key->mv_data) : 0;
    if (zero == NULL || *ld > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_INTERNAL, "a stored "
                              "subscription has a broken key");
    memcpy(dept, key->mv_data, *ld);
    dept[*ld] = '\0';
    return 0;
}

static int list_one(const MDB_val *key, const MDB_val *val, void *arg)
{
    list_arg *l = arg;
    char dept[ONCE_MAX_NAME + 1];
    Once__Subscription *s;
    size_t ld;
    int rc;

    if ((rc = key_dept(key, dept, &ld, l->err)) < 0) {
        l->rc = rc;
        return 1;
    }
    s = once__subscription__unpack(NULL, val->mv_size, val->mv_data);
    if (s == NULL) {
        l->rc = once_error_set(l->err, ONCE_ERR_INTERNAL, "a stored "
                               "subscription does not decode");
        return 1;
    }
    rc = l->fn(dept, s, l->arg);
    once__subscription__free_unpacked(s, NULL);
    if (rc != 0)
        l->rc = rc;
    return rc;
}

int subscriptions_list(MDB_txn *txn, const subscriptions *t, const char *dept,
                       int (*fn)(const char *dept,
                                 const Once__Subscription *s, void *arg),
                       void *arg, once_error *err)
{
    uint8_t prefix[ONCE_MAX_NAME + 1];
    list_arg l = { fn, arg, 0, err };
    int rc = walk_subs(txn, t, prefix,
                       dept != NULL ? dept_prefix(prefix, dept) : 0,
                       list_one, &l, err);

    return l.rc != 0 ? l.rc : rc;
}

int subscriptions_event_put(MDB_txn *txn, const subscriptions *t,
                            uint64_t leaf_index,
                            const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                            const char *type, const char *subject,
                            uint64_t version, bool revoked, once_error *err)
{
    Once__Notice n = ONCE__NOTICE__INIT;
    uint8_t k[8], v[EVENT_MAX];
    MDB_val key, val;

    if (strlen(type) > ONCE_MAX_NAME || strlen(subject) > ONCE_MAX_SUBJECT)
        return once_error_set(err, ONCE_ERR_INTERNAL, "an event's names are "
                              "over their limits");
    n.leaf_index = leaf_index;
    n.type = (char *)type;
    n.subject = (char *)subject;
    n.version = version;
    n.event = revoked ? ONCE__NOTICE_EVENT__NOTICE_EVENT_REVOKED
                      : ONCE__NOTICE_EVENT__NOTICE_EVENT_NEW_VERSION;
    memcpy(v, hash, AUDIT_SUBJECT_HASH_BYTES);
    store_put_u64be(k, leaf_index);
    key.mv_size = sizeof(k);
    key.mv_data = k;
    val.mv_size = AUDIT_SUBJECT_HASH_BYTES +
                  once__notice__pack(&n, v + AUDIT_SUBJECT_HASH_BYTES);
    val.mv_data = v;
    return store_error(mdb_put(txn, t->events, &key, &val, 0),
                       "cannot store the notice event", err);
}

size_t subscriptions_held_key(uint8_t k[HELD_KEY_MAX], const char *type,
                              const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                              const char *dept)
{
    size_t lt = strlen(type), ld = strlen(dept);

    if (lt > ONCE_MAX_NAME || ld > ONCE_MAX_NAME)
        return 0;
    memcpy(k, type, lt);
    k[lt] = 0;
    memcpy(k + lt + 1, hash, AUDIT_SUBJECT_HASH_BYTES);
    memcpy(k + lt + 1 + AUDIT_SUBJECT_HASH_BYTES, dept, ld);
    return lt + 1 + AUDIT_SUBJECT_HASH_BYTES + ld;
}

static bool held_key(uint8_t k[HELD_KEY_MAX], MDB_val *v, const char *type,
                     const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                     const char *dept)
{
    v->mv_size = subscriptions_held_key(k, type, hash, dept);
    v->mv_data = k;
    return v->mv_size > 0;
}

int subscriptions_held_put(MDB_txn *txn, const subscriptions *t,
                           const char *type,
                           const uint8_t hash[AUDIT_SUBJECT_HASH_BYTES],
                           const char *dept, once_error *err)
{
    uint8_t k[HELD_KEY_MAX];
    MDB_val key, val = { 0, "" };
    int rc;

    if (!held_key(k, &key, type, hash, dept))
        return once_error_set(err, ONCE_ERR_INTERNAL, "a held record's "
                              "names are over their limits");
    /* A key that exists ends the put before any page is touched. */
    rc = mdb_put(txn, t->held, &key, &val, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? 0 : store_error(rc, "cannot index the "
                                                "record held", err);
}

int subscriptions_last_event(MDB_txn *txn, const subscriptions *t,
                             uint64_t *index, bool *any, once_error *err)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    *any = false;
    *index = 0;
    rc = mdb_cursor_open(txn, t->events, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read notice events", err);
    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == MDB_SUCCESS && key.mv_size == 8) {
        *index = store_get_u64be(key.mv_data);
        *any = true;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read notice events", err);
    return 0;
}

int subscriptions_cursor_get(MDB_txn *txn, const subscriptions *t,
                             const char *dept, uint64_t *acked,
                             once_error *err)
{
    MDB_val key = { strlen(dept), (void *)dept }, val;
    int rc = mdb_get(txn, t->cursors, &key, &val);

    *acked = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read the acknowledgement cursor", err);
    if (val.mv_size == 8)
        *acked = store_get_u64be(val.mv_data);
    return 0;
}

int subscriptions_cursor_put(MDB_txn *txn, const subscriptions *t,
                             const char *dept, uint64_t acked,
                             once_error *err)
{
    uint8_t v[8];
    MDB_val key = { strlen(dept), (void *)dept }, val = { sizeof(v), v };
    uint64_t old;
    int rc;

    if (key.mv_size == 0 || key.mv_size > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_INTERNAL, "no department to "
                              "acknowledge for");
    if ((rc = subscriptions_cursor_get(txn, t, dept, &old, err)) < 0)
        return rc;
    if (acked <= old)
        return 0; /* a late or repeated acknowledgement changes nothing */
    store_put_u64be(v, acked);
    return store_error(mdb_put(txn, t->cursors, &key, &val, 0),
                       "cannot store the acknowledgement cursor", err);
}

/* ---- pruning ----------------------------------------------------------- */

/* The lowest acknowledged cursor of the departments that hold a
 * subscription; UINT64_MAX when none holds one. The subscriptions table
 * is in department order, so each department is one seek. */
static int prune_floor(MDB_txn *txn, const subscriptions *t, uint64_t *floor,
                       once_error *err)
{
    uint8_t next[ONCE_MAX_NAME + 1];
    char dept[ONCE_MAX_NAME + 1];
    MDB_cursor *cur;
    MDB_val key, val;
    uint64_t acked;
    size_t ld;
    int rc;

    *floor = UINT64_MAX;
    rc = mdb_cursor_open(txn, t->subs, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read subscriptions", err);
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        if ((rc = key_dept(&key, dept, &ld, err)) >= 0 && ld == 0)
            rc = once_error_set(err, ONCE_ERR_INTERNAL, "a stored "
                                "subscription has a broken key");
        if (rc < 0 ||
            (rc = subscriptions_cursor_get(txn, t, dept, &acked, err)) < 0) {
            mdb_cursor_close(cur);
            return rc;
        }
        if (acked < *floor)
            *floor = acked;
        /* dept 0x01 sorts after every key dept 0 ... */
        memcpy(next, dept, ld);
        next[ld] = 1;
        key.mv_size = ld + 1;
        key.mv_data = next;
        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read subscriptions", err);
    return 0;
}

int subscriptions_prune(MDB_txn *txn, const subscriptions *t, size_t max,
                        size_t *deleted, bool *more, once_error *err)
{
    uint64_t floor, last, index;
    MDB_cursor *cur;
    MDB_val key, val;
    bool any;
    int rc;

    *deleted = 0;
    *more = false;
    if ((rc = subscriptions_last_event(txn, t, &last, &any, err)) < 0 ||
        (rc = prune_floor(txn, t, &floor, err)) < 0)
        return rc;
    if (!any)
        return 0;
    rc = mdb_cursor_open(txn, t->events, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read notice events", err);
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        if (key.mv_size != 8) {
            rc = -1;
            break;
        }
        index = store_get_u64be(key.mv_data);
        /* The newest stays: an acknowledgement is checked against it. */
        if (index > floor || index >= last)
            break;
        if (*deleted == max) {
            *more = true;
            break;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS)
            break;
        (*deleted)++;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == -1)
        return once_error_set(err, ONCE_ERR_INTERNAL, "a stored notice event "
                              "has a broken key");
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_error(rc, "cannot prune notice events", err);
    return 0;
}

int subscriptions_events_stored(MDB_txn *txn, const subscriptions *t,
                                size_t *n, once_error *err)
{
    MDB_stat st;
    int rc = mdb_stat(txn, t->events, &st);

    *n = rc == MDB_SUCCESS ? st.ms_entries : 0;
    return store_error(rc, "cannot count notice events", err);
}

/* Counts a subscription under its scope, the byte after dept 0. */
static int count_scope(const MDB_val *key, const MDB_val *val, void *arg)
{
    uint64_t *counts = arg;
    const uint8_t *k = key->mv_data;
    const uint8_t *zero = memchr(k, 0, key->mv_size);
    size_t at = zero != NULL ? (size_t)(zero - k) + 1 : key->mv_size;

    (void)val;
    counts[at < key->mv_size && k[at] < 4 ? k[at] : 0]++;
    return 0;
}

int subscriptions_count_by_scope(MDB_txn *txn, const subscriptions *t,
                                  uint64_t counts[4], once_error *err)
{
    static const uint8_t all[1]; /* an empty prefix */

    memset(counts, 0, 4 * sizeof(counts[0]));
    return walk_subs(txn, t, all, 0, count_scope, counts, err);
}

/* ---- matching ---------------------------------------------------------- */

typedef struct match_state {
    MDB_txn *txn;
    const subscriptions *t;
    const store *s;
    const char *dept;
    char type[ONCE_MAX_NAME + 1]; /* the type last looked up */
    bool granted;                 /* dept's grants cover it */
    bool held_all;                /* dept holds a HELD subscription of
                                     every type ... */
    uint64_t held_all_since;      /* ... made at this leaf */
} match_state;

/* True when dept holds the subscription and it was made before the
 * event at leaf: a subscription matches the events after its own leaf,
 * not the history before it. */
static bool has_sub(match_state *m, int scope, const char *type,
                    const char *subject, uint64_t leaf, once_error *err)
{
    uint64_t since;

    return subscriptions_get(m->txn, m->t, m->dept, scope, type, subject,
                             &since, err) == 0 &&
           since < leaf;
}

/* True when the event reaches m->dept. */
static bool matches(match_state *m, const Once__Notice *n,
                    const uint8_t *hash, once_error *err)
{
    uint8_t k[HELD_KEY_MAX];
    MDB_val key, val;

    if (strcmp(m->type, n->type) != 0) {
        snprintf(m->type, sizeof(m->type), "%s", n->type);
        m->granted = policy_grant_covers_type(m->txn, m->s, m->dept, n->type,
                                              err) == 0;
    }
    if (!m->granted)
        return false;
    if (has_sub(m, ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE, n->type, "",
                n->leaf_index, err) ||
        has_sub(m, ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT, n->type,
                n->subject, n->leaf_index, err))
        return true;
    if (!(m->held_all && m->held_all_since < n->leaf_index) &&
        !has_sub(m, ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD, n->type, "",
                 n->leaf_index, err))
        return false;
    return held_key(k, &key, n->type, hash, m->dept) &&
           mdb_get(m->txn, m->t->held, &key, &val) == MDB_SUCCESS;
}

int subscriptions_scan(MDB_txn *txn, const subscriptions *t, const store *s,
                       const char *dept, uint64_t after, size_t max_notices,
                       size_t max_events,
                       int (*fn)(const notice *n, void *arg), void *arg,
                       uint64_t *scanned_to, once_error *err)
{
    match_state m = { txn, t, s, dept, "", false, false, 0 };
    size_t found = 0, looked = 0;
    uint8_t k[8];
    MDB_cursor *cur;
    MDB_val key, val;
    int rc, stop = 0;

    *scanned_to = after;
    if (after == UINT64_MAX)
        return 0;
    m.held_all = subscriptions_get(txn, t, dept,
                                   ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD, "",
                                   "", &m.held_all_since, err) == 0;
    rc = mdb_cursor_open(txn, t->events, &cur);
    if (rc != MDB_SUCCESS)
        return store_error(rc, "cannot read notice events", err);
    store_put_u64be(k, after + 1);
    key.mv_size = sizeof(k);
    key.mv_data = k;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS && found < max_notices && looked < max_events &&
           stop == 0) {
        Once__Notice *n;

        if (key.mv_size != 8 || val.mv_size <= AUDIT_SUBJECT_HASH_BYTES) {
            rc = -1;
            break;
        }
        n = once__notice__unpack(NULL, val.mv_size - AUDIT_SUBJECT_HASH_BYTES,
                                 (const uint8_t *)val.mv_data +
                                     AUDIT_SUBJECT_HASH_BYTES);
        if (n == NULL) {
            rc = -1;
            break;
        }
        looked++;
        *scanned_to = store_get_u64be(key.mv_data);
        if (matches(&m, n, val.mv_data, err)) {
            notice out = { n->leaf_index, n->type, n->subject, n->version,
                           (int)n->event };

            found++;
            stop = fn(&out, arg);
        }
        once__notice__free_unpacked(n, NULL);
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == -1)
        return once_error_set(err, ONCE_ERR_INTERNAL, "a stored notice event "
                              "does not decode");
    if (stop < 0)
        return stop;
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return store_error(rc, "cannot read notice events", err);
    return 0;
}
