/*
 * test_policy.c - departments, record types and grants on a real LMDB
 * environment.
 *
 * Besides each refusal the header promises, one test changes policy from a
 * second process while the first keeps its environment open, as oncectl
 * does under a running onced, and checks the first sees it at its next
 * transaction.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "temp_store.h"

typedef struct fixture {
    char dir[PATH_MAX];
    store s;
    once_keypair amr, tax, bank;
} fixture;

static int setup(void **state)
{
    static fixture f;

    memset(&f, 0, sizeof(f));
    if (temp_store_open(f.dir, sizeof(f.dir), &f.s) < 0)
        return -1;
    if (once_keypair_generate(&f.amr) < 0 ||
        once_keypair_generate(&f.tax) < 0 ||
        once_keypair_generate(&f.bank) < 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    temp_store_close(f->dir, &f->s);
    return 0;
}

/* amr (the issuer), tax and bank, committed. */
static void add_departments(fixture *f)
{
    once_error err;
    MDB_txn *txn = temp_store_begin(&f->s, 0);

    assert_int_equal(policy_department_add(txn, &f->s, "tax", "State Taxation",
                                           f->tax.public_key, &err), 0);
    assert_int_equal(policy_department_add(txn, &f->s, "amr",
                                           "Market Regulation",
                                           f->amr.public_key, &err), 0);
    assert_int_equal(policy_department_add(txn, &f->s, "bank", NULL,
                                           f->bank.public_key, &err), 0);
    temp_store_commit(txn);
}

static void make_licence_type(record_type *t)
{
    memset(t, 0, sizeof(*t));
    strcpy(t->name, "business-licence");
    strcpy(t->issuers[0], "amr");
    t->issuer_count = 1;
    t->subject_kind = ONCE_SUBJECT_ENTERPRISE;
    strcpy(t->fields[0], "name");
    strcpy(t->fields[1], "legal-representative");
    strcpy(t->fields[2], "address");
    strcpy(t->fields[3], "registered-capital");
    t->field_count = 4;
}

static void add_licence_type(fixture *f)
{
    record_type t;
    once_error err;
    MDB_txn *txn = temp_store_begin(&f->s, 0);

    make_licence_type(&t);
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err), 0);
    temp_store_commit(txn);
}

static void make_grant(grant *g, const char *requester, const char *purpose)
{
    memset(g, 0, sizeof(*g));
    strcpy(g->requester, requester);
    strcpy(g->type, "business-licence");
    strcpy(g->purpose, purpose);
    strcpy(g->fields[0], "name");
    strcpy(g->fields[1], "address");
    g->field_count = 2;
}

static void test_valid_name(void **state)
{
    char longest[ONCE_MAX_NAME + 1], too_long[ONCE_MAX_NAME + 2];

    (void)state;
    memset(longest, 'a', ONCE_MAX_NAME);
    longest[ONCE_MAX_NAME] = '\0';
    memset(too_long, 'a', ONCE_MAX_NAME + 1);
    too_long[ONCE_MAX_NAME + 1] = '\0';
    assert_true(policy_valid_name("tax"));
    assert_true(policy_valid_name("0bank.branch_1-a"));
    assert_true(policy_valid_name(longest));
    assert_false(policy_valid_name(too_long));
    assert_false(policy_valid_name(""));
    assert_false(policy_valid_name(NULL));
    assert_false(policy_valid_name("-tax"));
    assert_false(policy_valid_name(".tax"));
    assert_false(policy_valid_name("Tax"));
    assert_false(policy_valid_name("tax office"));
    assert_false(policy_valid_name("tax/1"));
}

static void test_departments(void **state)
{
    fixture *f = *state;
    uint8_t bad_key[ONCE_PUBLIC_KEY_BYTES] = { 0 };
    department d;
    once_error err;
    MDB_txn *txn;

    add_departments(f);

    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_department_get(txn, &f->s, "tax", &d, &err), 0);
    assert_string_equal(d.id, "tax");
    assert_string_equal(d.name, "State Taxation");
    assert_memory_equal(d.public_key, f->tax.public_key,
                        ONCE_PUBLIC_KEY_BYTES);
    assert_int_equal(d.status, DEPARTMENT_ACTIVE);
    assert_true(d.created_at > 0);
    assert_int_equal(d.changed_at, d.created_at);

    memset(&d, 0, sizeof(d));
    assert_int_equal(policy_department_by_key(txn, &f->s, f->amr.public_key,
                                              &d, &err), 0);
    assert_string_equal(d.id, "amr");
    assert_int_equal(policy_department_get(txn, &f->s, "bank", &d, &err), 0);
    assert_string_equal(d.name, "");

    assert_int_equal(policy_department_get(txn, &f->s, "police", &d, &err),
                     -ONCE_ERR_UNKNOWN_SENDER);
    assert_int_equal(err.code, ONCE_ERR_UNKNOWN_SENDER);
    assert_non_null(strstr(err.message, "police"));
    /* A malformed id (as a client may send) is not echoed. */
    assert_int_equal(policy_department_get(txn, &f->s, "bad\nid", &d, &err),
                     -ONCE_ERR_UNKNOWN_SENDER);
    assert_null(strchr(err.message, '\n'));
    assert_int_equal(policy_department_by_key(txn, &f->s, bad_key, &d, &err),
                     -ONCE_ERR_UNKNOWN_SENDER);
    mdb_txn_abort(txn);

    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(policy_department_add(txn, &f->s, "tax", "again",
                                           f->bank.public_key, &err),
                     -ONCE_ERR_EXISTS);
    assert_non_null(strstr(err.message, "tax already exists"));
    assert_int_equal(policy_department_add(txn, &f->s, "police", NULL,
                                           f->tax.public_key, &err),
                     -ONCE_ERR_EXISTS);
    assert_non_null(strstr(err.message, "belongs to department tax"));
    assert_int_equal(policy_department_add(txn, &f->s, "Police", NULL,
                                           bad_key, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(policy_department_add(txn, &f->s, "police", NULL,
                                           bad_key, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "Ed25519"));
    assert_int_equal(policy_department_add(txn, &f->s, "police", "bad\x01name",
                                           f->tax.public_key, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_int_equal(policy_department_add(txn, &f->s, "police",
                                           "bad \xc3\x28 utf-8",
                                           f->tax.public_key, &err),
                     -ONCE_ERR_INVALID_TEXT);
    mdb_txn_abort(txn);
}

static void test_suspend_resume(void **state)
{
    fixture *f = *state;
    department d;
    once_error err;
    MDB_txn *txn;

    add_departments(f);
    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(policy_department_set_status(txn, &f->s, "tax",
                                                  DEPARTMENT_SUSPENDED, &err),
                     0);
    temp_store_commit(txn);

    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_department_by_key(txn, &f->s, f->tax.public_key,
                                              &d, &err), 0);
    assert_int_equal(d.status, DEPARTMENT_SUSPENDED);
    assert_true(d.changed_at >= d.created_at);
    assert_string_equal(d.name, "State Taxation");
    mdb_txn_abort(txn);

    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(policy_department_set_status(txn, &f->s, "tax",
                                                  DEPARTMENT_ACTIVE, &err), 0);
    assert_int_equal(policy_department_get(txn, &f->s, "tax", &d, &err), 0);
    assert_int_equal(d.status, DEPARTMENT_ACTIVE);
    assert_int_equal(policy_department_set_status(txn, &f->s, "police",
                                                  DEPARTMENT_SUSPENDED, &err),
                     -ONCE_ERR_UNKNOWN_SENDER);
    assert_int_equal(policy_department_set_status(txn, &f->s, "tax",
                                                  (department_status)7, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    temp_store_commit(txn);
}

typedef struct names {
    char list[8][ONCE_MAX_NAME + 1];
    size_t count;
    size_t stop_after; /* 0 = never */
} names;

static int collect_department(const department *d, void *arg)
{
    names *n = arg;

    strcpy(n->list[n->count++], d->id);
    return n->count == n->stop_after ? 9 : 0;
}

static void test_department_list(void **state)
{
    fixture *f = *state;
    once_error err;
    names n;
    MDB_txn *txn;

    add_departments(f);
    txn = temp_store_begin(&f->s, 1);
    memset(&n, 0, sizeof(n));
    assert_int_equal(policy_department_list(txn, &f->s, collect_department,
                                            &n, &err), 0);
    assert_int_equal(n.count, 3);
    assert_string_equal(n.list[0], "amr");
    assert_string_equal(n.list[1], "bank");
    assert_string_equal(n.list[2], "tax");

    memset(&n, 0, sizeof(n));
    n.stop_after = 1;
    assert_int_equal(policy_department_list(txn, &f->s, collect_department,
                                            &n, &err), 9);
    assert_int_equal(n.count, 1);
    mdb_txn_abort(txn);
}

static void test_types(void **state)
{
    fixture *f = *state;
    record_type t, got;
    once_error err;
    MDB_txn *txn;

    add_departments(f);
    txn = temp_store_begin(&f->s, 0);

    make_licence_type(&t);
    strcpy(t.issuers[0], "police");
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_UNKNOWN_SENDER);
    assert_non_null(strstr(err.message, "police"));

    make_licence_type(&t);
    t.issuer_count = 0;
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);

    make_licence_type(&t);
    strcpy(t.issuers[1], "amr");
    t.issuer_count = 2;
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "twice"));

    make_licence_type(&t);
    strcpy(t.fields[3], "name");
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);

    make_licence_type(&t);
    strcpy(t.fields[2], "Address");
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);

    make_licence_type(&t);
    t.subject_kind = ONCE_SUBJECT_UNSPECIFIED;
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);

    make_licence_type(&t);
    strcpy(t.name, "Licence");
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);

    make_licence_type(&t);
    strcpy(t.issuers[1], "tax");
    t.issuer_count = 2;
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err), 0);
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err), -ONCE_ERR_EXISTS);
    temp_store_commit(txn);

    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_type_get(txn, &f->s, "business-licence", &got,
                                     &err), 0);
    assert_string_equal(got.name, "business-licence");
    assert_int_equal(got.subject_kind, ONCE_SUBJECT_ENTERPRISE);
    assert_int_equal(got.issuer_count, 2);
    assert_string_equal(got.issuers[0], "amr");
    assert_string_equal(got.issuers[1], "tax");
    assert_int_equal(got.field_count, 4);
    assert_string_equal(got.fields[1], "legal-representative");
    assert_string_equal(got.fields[3], "registered-capital");
    assert_true(got.created_at > 0);
    assert_true(policy_type_has_issuer(&got, "amr"));
    assert_true(policy_type_has_issuer(&got, "tax"));
    assert_false(policy_type_has_issuer(&got, "bank"));
    assert_true(policy_type_has_field(&got, "address"));
    assert_false(policy_type_has_field(&got, "addr"));
    assert_int_equal(policy_type_get(txn, &f->s, "id-card", &got, &err),
                     -ONCE_ERR_UNKNOWN_TYPE);
    assert_non_null(strstr(err.message, "id-card"));
    mdb_txn_abort(txn);
}

static int collect_type(const record_type *t, void *arg)
{
    names *n = arg;

    strcpy(n->list[n->count++], t->name);
    return 0;
}

static void test_type_list_and_many_fields(void **state)
{
    fixture *f = *state;
    record_type t, got;
    once_error err;
    names n;
    MDB_txn *txn;
    size_t i;

    add_departments(f);
    add_licence_type(f);
    /* A type with the most fields, each of the longest name, decodes
     * whole. */
    memset(&t, 0, sizeof(t));
    strcpy(t.name, "id-card");
    strcpy(t.issuers[0], "amr");
    strcpy(t.issuers[1], "tax");
    t.issuer_count = 2;
    t.subject_kind = ONCE_SUBJECT_PERSON;
    for (i = 0; i < ONCE_MAX_FIELDS; i++) {
        memset(t.fields[i], 'x', ONCE_MAX_NAME);
        t.fields[i][0] = (char)('a' + i / 26);
        t.fields[i][1] = (char)('a' + i % 26);
    }
    t.field_count = ONCE_MAX_FIELDS;
    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(policy_type_add(txn, &f->s, &t, &err), 0);
    temp_store_commit(txn);

    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_type_get(txn, &f->s, "id-card", &got, &err), 0);
    assert_int_equal(got.field_count, ONCE_MAX_FIELDS);
    assert_int_equal(got.subject_kind, ONCE_SUBJECT_PERSON);
    for (i = 0; i < ONCE_MAX_FIELDS; i++) {
        assert_string_equal(got.fields[i], t.fields[i]);
        assert_int_equal(strlen(got.fields[i]), ONCE_MAX_NAME);
    }
    memset(&n, 0, sizeof(n));
    assert_int_equal(policy_type_list(txn, &f->s, collect_type, &n, &err), 0);
    assert_int_equal(n.count, 2);
    assert_string_equal(n.list[0], "business-licence");
    assert_string_equal(n.list[1], "id-card");
    mdb_txn_abort(txn);
}

static void test_grants(void **state)
{
    fixture *f = *state;
    grant g, got;
    once_error err;
    MDB_txn *txn;

    add_departments(f);
    add_licence_type(f);

    /* Default deny. */
    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "tax registration", &got, &err),
                     -ONCE_ERR_NO_GRANT);
    assert_int_equal(err.code, ONCE_ERR_NO_GRANT);
    assert_non_null(strstr(err.message, "tax registration"));
    mdb_txn_abort(txn);

    txn = temp_store_begin(&f->s, 0);
    make_grant(&g, "tax", "tax registration");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), 0);
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), -ONCE_ERR_EXISTS);

    make_grant(&g, "tax", "audit");
    strcpy(g.fields[1], "shoe-size");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "shoe-size is not a field"));

    make_grant(&g, "police", "seal engraving");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err),
                     -ONCE_ERR_UNKNOWN_SENDER);

    make_grant(&g, "bank", "account opening");
    strcpy(g.type, "id-card");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err),
                     -ONCE_ERR_UNKNOWN_TYPE);

    make_grant(&g, "bank", "");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err),
                     -ONCE_ERR_MISSING_PURPOSE);

    make_grant(&g, "bank", "account\topening");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err),
                     -ONCE_ERR_INVALID_TEXT);

    make_grant(&g, "bank", "account opening");
    strcpy(g.fields[1], "name");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);

    /* UTF-8 purposes are stored and matched byte for byte. */
    make_grant(&g, "bank", "\xe5\xbc\x80\xe6\x88\xb7");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), 0);
    temp_store_commit(txn);

    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "tax registration", &got, &err), 0);
    assert_string_equal(got.requester, "tax");
    assert_string_equal(got.type, "business-licence");
    assert_string_equal(got.purpose, "tax registration");
    assert_int_equal(got.field_count, 2);
    assert_true(got.created_at > 0);
    assert_true(policy_grant_allows_field(&got, "name"));
    assert_true(policy_grant_allows_field(&got, "address"));
    assert_false(policy_grant_allows_field(&got, "legal-representative"));
    assert_int_equal(policy_grant_get(txn, &f->s, "bank", "business-licence",
                                      "\xe5\xbc\x80\xe6\x88\xb7", &got, &err),
                     0);
    /* Another purpose, another requester, or no purpose: no grant. */
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "tax audit", &got, &err),
                     -ONCE_ERR_NO_GRANT);
    assert_int_equal(policy_grant_get(txn, &f->s, "bank", "business-licence",
                                      "tax registration", &got, &err),
                     -ONCE_ERR_NO_GRANT);
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "", &got, &err),
                     -ONCE_ERR_NO_GRANT);
    mdb_txn_abort(txn);

    txn = temp_store_begin(&f->s, 0);
    assert_int_equal(policy_grant_revoke(txn, &f->s, "tax", "business-licence",
                                         "tax registration", &err), 0);
    assert_int_equal(policy_grant_revoke(txn, &f->s, "tax", "business-licence",
                                         "tax registration", &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "tax registration", &got, &err),
                     -ONCE_ERR_NO_GRANT);
    temp_store_commit(txn);
}

typedef struct grant_rows {
    char rows[8][ONCE_MAX_NAME * 2 + ONCE_MAX_PURPOSE + 3];
    size_t count;
} grant_rows;

static int collect_grant(const grant *g, void *arg)
{
    grant_rows *r = arg;

    snprintf(r->rows[r->count++], sizeof(r->rows[0]), "%s/%s/%s",
             g->requester, g->type, g->purpose);
    return 0;
}

static void test_grant_list_order(void **state)
{
    fixture *f = *state;
    grant_rows r;
    once_error err;
    grant g;
    MDB_txn *txn;

    add_departments(f);
    add_licence_type(f);
    txn = temp_store_begin(&f->s, 0);
    make_grant(&g, "tax", "tax registration");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), 0);
    make_grant(&g, "bank", "account opening");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), 0);
    make_grant(&g, "tax", "audit");
    assert_int_equal(policy_grant_add(txn, &f->s, &g, &err), 0);
    temp_store_commit(txn);

    txn = temp_store_begin(&f->s, 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(policy_grant_list(txn, &f->s, collect_grant, &r, &err),
                     0);
    assert_int_equal(r.count, 3);
    assert_string_equal(r.rows[0], "bank/business-licence/account opening");
    assert_string_equal(r.rows[1], "tax/business-licence/audit");
    assert_string_equal(r.rows[2], "tax/business-licence/tax registration");
    mdb_txn_abort(txn);
}

/* oncectl and onced are two processes on one environment: a grant added
 * and a department suspended by another process are seen by this one's
 * next transaction, with its environment open throughout. */
static void test_change_from_another_process(void **state)
{
    fixture *f = *state;
    department d;
    grant got;
    once_error err;
    MDB_txn *txn;
    pid_t pid;
    int status;

    add_departments(f);
    add_licence_type(f);
    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "tax registration", &got, &err),
                     -ONCE_ERR_NO_GRANT);
    mdb_txn_abort(txn);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store other;
        grant g;
        int rc;

        /* The parent's environment must not be used after fork. */
        rc = store_open(&other, f->dir, 0, &err);
        if (rc == 0)
            rc = store_begin(&other, 0, &txn, &err);
        if (rc == 0) {
            make_grant(&g, "tax", "tax registration");
            rc = policy_grant_add(txn, &other, &g, &err);
            if (rc == 0)
                rc = policy_department_set_status(txn, &other, "bank",
                                                  DEPARTMENT_SUSPENDED, &err);
            if (rc == 0)
                rc = store_commit(txn, &err);
            else
                mdb_txn_abort(txn);
        }
        store_close(&other);
        _exit(rc == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    txn = temp_store_begin(&f->s, 1);
    assert_int_equal(policy_grant_get(txn, &f->s, "tax", "business-licence",
                                      "tax registration", &got, &err), 0);
    assert_int_equal(policy_department_by_key(txn, &f->s, f->bank.public_key,
                                              &d, &err), 0);
    assert_int_equal(d.status, DEPARTMENT_SUSPENDED);
    mdb_txn_abort(txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test_setup_teardown(test_departments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspend_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_department_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_list_and_many_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grant_list_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_change_from_another_process,
                                        setup, teardown),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
