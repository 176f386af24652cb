/*
 * test_client.c - end to end through libonce's client: every happy path
 * and every refusal a well-behaved client can run into, against a real
 * onced in a temp broker home.
 *
 * The cast is the seed's case: market supervision issues business
 * licences; tax and public security request them with their own grants; a
 * bank starts without one. Policy changes are made with oncectl while the
 * broker runs, and must apply at once. The tests share one broker and run
 * in order; each uses its own subjects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define LICENCE "business-licence"
#define LICENCE_FIELDS \
    "name,legal_representative,registered_capital,address,business_scope," \
    "established_on"
#define TAX_PURPOSE "tax-registration"
#define SEAL_PURPOSE "seal-engraving"
#define BANK_PURPOSE "account-opening"

static e2e_broker broker;
static e2e_dept market, tax, police, bank;
static once_client *market_c, *tax_c, *police_c, *bank_c;
/* Every subject used, to check none reaches the log. */
static char used_subjects[64][19];
static size_t used_count;

static const char *subject(unsigned n)
{
    char *s = used_subjects[used_count++ % 64];

    e2e_uscc(s, 4200000 + n);
    return s;
}

/* A business licence with the six catalogue fields (and one more when
 * extra is not NULL), signed by signer. */
static once_record *licence(const char *issuer, const once_keypair *signer,
                            const char *subj, uint64_t version,
                            const char *name, const char *extra)
{
    once_record *r = NULL;
    once_error err;

    assert_int_equal(once_record_new(&r, LICENCE, subj, version, issuer,
                                     1700000000000ull, 0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", name, &err), 0);
    assert_int_equal(once_record_add_text(r, "legal_representative",
                                          "Zhang San", &err), 0);
    assert_int_equal(once_record_add_text(r, "registered_capital",
                                          "1000000 CNY", &err), 0);
    assert_int_equal(once_record_add_text(r, "address",
                                          "1 Chang'an Avenue, Beijing", &err),
                     0);
    assert_int_equal(once_record_add_text(r, "business_scope",
                                          "software development", &err), 0);
    assert_int_equal(once_record_add_text(r, "established_on", "2020-01-02",
                                          &err), 0);
    if (extra != NULL)
        assert_int_equal(once_record_add_text(r, extra, "x", &err), 0);
    assert_int_equal(once_record_sign(r, signer, &err), 0);
    return r;
}

static void publish_ok(const char *subj, uint64_t version, const char *name)
{
    once_record *r = licence(market.id, &market.kp, subj, version, name,
                             NULL);
    once_error err;

    if (once_client_publish(market_c, r, &err) != 0)
        fail_msg("publish: %s", err.message);
    once_record_free(r);
}

static int publish_code(once_client *c, once_record *r)
{
    once_error err;
    int rc = once_client_publish(c, r, &err);

    once_record_free(r);
    return rc;
}

static int request_code(once_client *c, const char *type, const char *subj,
                        const char *purpose, const char *case_id,
                        uint64_t version)
{
    once_record *r = NULL;
    once_error err;
    int rc = once_client_request(c, type, subj, purpose, case_id, version, &r,
                                 &err);

    if (rc < 0)
        assert_true(err.message[0] != '\0'); /* every refusal explains */
    once_record_free(r);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &police, "public-security") != 0 ||
        e2e_dept_add(&broker, &bank, "bank") != 0 ||
        e2e_oncectl(&broker, "type", "add", LICENCE, "--issuer", market.id,
                    "--subject", "enterprise", "--fields", LICENCE_FIELDS,
                    NULL) != 0 ||
        e2e_oncectl(&broker, "type", "add", "joint-permit", "--issuer",
                    "market-supervision,tax", "--subject", "enterprise",
                    "--fields", "name", NULL) != 0 ||
        e2e_oncectl(&broker, "type", "add", "residence-record", "--issuer",
                    police.id, "--subject", "person", "--fields",
                    "name,address", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", tax.id, "--type",
                    LICENCE, "--purpose", TAX_PURPOSE, "--fields",
                    "name,legal_representative,registered_capital,address,"
                    "business_scope", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", police.id,
                    "--type", LICENCE, "--purpose", SEAL_PURPOSE, "--fields",
                    "name,legal_representative", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", tax.id, "--type",
                    "residence-record", "--purpose", TAX_PURPOSE, "--fields",
                    "name", NULL) != 0)
        return -1;
    /* Debug level, so the log check below sees every line onced can
     * write about a request. */
    if (e2e_start(&broker, &market, "--log-level", "debug", "--workers", "3",
                  NULL) != 0)
        return -1;
    e2e_open_client(&broker, &market, &market_c);
    e2e_open_client(&broker, &tax, &tax_c);
    e2e_open_client(&broker, &police, &police_c);
    e2e_open_client(&broker, &bank, &bank_c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    once_client_close(market_c);
    once_client_close(tax_c);
    once_client_close(police_c);
    once_client_close(bank_c);
    e2e_cleanup(&broker);
    return 0;
}

static void test_ping(void **state)
{
    once_error err;

    (void)state;
    assert_int_equal(once_client_ping(market_c, &err), 0);
    assert_int_equal(once_client_ping(bank_c, &err), 0);
}

/* The seed's case: tax gets five of six fields, public security two, and
 * both verify the issuer's signature themselves. */
static void test_granted_fields_only(void **state)
{
    const char *s = subject(1);
    const uint8_t *value;
    once_record *r = NULL;
    once_error err;
    size_t len;

    (void)state;
    publish_ok(s, 1, "Example Trading Co., Ltd.");

    assert_int_equal(once_client_request(tax_c, LICENCE, s, TAX_PURPOSE,
                                         "TAX-2024-000001", 0, &r, &err), 0);
    assert_int_equal(once_record_verify(r, market.kp.public_key, &err), 0);
    assert_string_equal(once_record_issuer(r), market.id);
    assert_int_equal(once_record_version(r), 1);
    assert_int_equal(once_record_status_of(r), ONCE_STATUS_VALID);
    assert_int_equal(once_record_field_count(r), 6);
    assert_int_equal(once_record_disclosure_count(r), 5);
    assert_int_equal(once_record_field_value(r, "name", &value, &len), 0);
    assert_int_equal(len, strlen("Example Trading Co., Ltd."));
    assert_memory_equal(value, "Example Trading Co., Ltd.", len);
    assert_int_equal(once_record_field_value(r, "established_on", &value,
                                             &len),
                     -ONCE_ERR_NOT_FOUND);
    /* Another issuer's key does not verify it. */
    assert_int_equal(once_record_verify(r, tax.kp.public_key, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    once_record_free(r);

    assert_int_equal(once_client_request(police_c, LICENCE, s, SEAL_PURPOSE,
                                         "SEAL-7", 0, &r, &err), 0);
    assert_int_equal(once_record_verify(r, market.kp.public_key, &err), 0);
    assert_int_equal(once_record_disclosure_count(r), 2);
    assert_int_equal(once_record_field_value(r, "legal_representative",
                                             &value, &len), 0);
    assert_int_equal(once_record_field_value(r, "address", &value, &len),
                     -ONCE_ERR_NOT_FOUND);
    once_record_free(r);
}

static void test_versions(void **state)
{
    const char *s = subject(2);
    const uint8_t *value;
    once_record *r = NULL;
    once_error err;
    size_t len;

    (void)state;
    publish_ok(s, 1, "First Name Co.");
    publish_ok(s, 3, "Second Name Co.");
    assert_int_equal(once_client_request(tax_c, LICENCE, s, TAX_PURPOSE, "C1",
                                         0, &r, &err), 0);
    assert_int_equal(once_record_version(r), 3);
    assert_int_equal(once_record_field_value(r, "name", &value, &len), 0);
    assert_memory_equal(value, "Second Name Co.", len);
    once_record_free(r);
    assert_int_equal(once_client_request(tax_c, LICENCE, s, TAX_PURPOSE, "C1",
                                         1, &r, &err), 0);
    assert_int_equal(once_record_version(r), 1);
    assert_int_equal(once_record_field_value(r, "name", &value, &len), 0);
    assert_memory_equal(value, "First Name Co.", len);
    once_record_free(r);
    assert_int_equal(request_code(tax_c, LICENCE, s, TAX_PURPOSE, "C1", 2),
                     -ONCE_ERR_NOT_FOUND);
    /* Versions only grow. */
    assert_int_equal(publish_code(market_c, licence(market.id, &market.kp, s,
                                                    3, "Again", NULL)),
                     -ONCE_ERR_STALE_VERSION);
    assert_int_equal(publish_code(market_c, licence(market.id, &market.kp, s,
                                                    2, "Older", NULL)),
                     -ONCE_ERR_STALE_VERSION);
}

static void test_revoked_answered_as_revoked(void **state)
{
    const char *s = subject(3);
    once_record *rev = NULL, *r = NULL;
    once_error err;

    (void)state;
    publish_ok(s, 1, "Soon Revoked Co.");
    assert_int_equal(once_record_new_revocation(&rev, LICENCE, s, 2,
                                                market.id, &err), 0);
    assert_int_equal(once_record_sign(rev, &market.kp, &err), 0);
    assert_int_equal(once_client_revoke(market_c, rev, &err), 0);
    /* The same revocation again is not above the latest. */
    assert_int_equal(once_client_revoke(market_c, rev, &err),
                     -ONCE_ERR_STALE_VERSION);
    once_record_free(rev);

    assert_int_equal(once_client_request(tax_c, LICENCE, s, TAX_PURPOSE, "C2",
                                         0, &r, &err), 0);
    assert_int_equal(once_record_status_of(r), ONCE_STATUS_REVOKED);
    assert_int_equal(once_record_version(r), 2);
    assert_int_equal(once_record_disclosure_count(r), 0);
    assert_int_equal(once_record_verify(r, market.kp.public_key, &err), 0);
    once_record_free(r);
    /* An older version is not served once the record is revoked. */
    assert_int_equal(once_client_request(tax_c, LICENCE, s, TAX_PURPOSE, "C2",
                                         1, &r, &err), 0);
    assert_int_equal(once_record_status_of(r), ONCE_STATUS_REVOKED);
    assert_int_equal(once_record_disclosure_count(r), 0);
    once_record_free(r);

    /* Nothing to revoke. */
    assert_int_equal(once_record_new_revocation(&rev, LICENCE, subject(4), 1,
                                                market.id, &err), 0);
    assert_int_equal(once_record_sign(rev, &market.kp, &err), 0);
    assert_int_equal(once_client_revoke(market_c, rev, &err),
                     -ONCE_ERR_NOT_FOUND);
    once_record_free(rev);
}

static void test_no_grant(void **state)
{
    const char *s = subject(5);

    (void)state;
    publish_ok(s, 1, "Granted Co.");
    assert_int_equal(request_code(bank_c, LICENCE, s, BANK_PURPOSE, "B1", 0),
                     -ONCE_ERR_NO_GRANT);
    /* A grant is for one purpose. */
    assert_int_equal(request_code(police_c, LICENCE, s, TAX_PURPOSE, "B1", 0),
                     -ONCE_ERR_NO_GRANT);
    /* The issuer itself has no grant either: default deny. */
    assert_int_equal(request_code(market_c, LICENCE, s, TAX_PURPOSE, "B1", 0),
                     -ONCE_ERR_NO_GRANT);
}

static void test_missing_purpose(void **state)
{
    const char *s = subject(1);

    (void)state;
    assert_int_equal(request_code(tax_c, LICENCE, s, "", "C3", 0),
                     -ONCE_ERR_MISSING_PURPOSE);
    assert_int_equal(request_code(tax_c, LICENCE, s, NULL, "C3", 0),
                     -ONCE_ERR_MISSING_PURPOSE);
    assert_int_equal(request_code(tax_c, LICENCE, s, TAX_PURPOSE, "", 0),
                     -ONCE_ERR_MISSING_PURPOSE);
    assert_int_equal(request_code(tax_c, LICENCE, s, TAX_PURPOSE, NULL, 0),
                     -ONCE_ERR_MISSING_PURPOSE);
}

static void test_invalid_subject(void **state)
{
    char bad[19], person[19];

    (void)state;
    e2e_uscc(bad, 4200099);
    bad[17] = bad[17] == '0' ? '1' : '0'; /* wrong check character */
    assert_int_equal(request_code(tax_c, LICENCE, bad, TAX_PURPOSE, "C4", 0),
                     -ONCE_ERR_INVALID_SUBJECT);
    assert_int_equal(publish_code(market_c, licence(market.id, &market.kp,
                                                    bad, 1, "Bad Co.", NULL)),
                     -ONCE_ERR_INVALID_SUBJECT);
    /* An ID number is not a credit code, and the other way round. */
    e2e_resident_id(person, 17);
    assert_int_equal(request_code(tax_c, LICENCE, person, TAX_PURPOSE, "C4",
                                  0),
                     -ONCE_ERR_INVALID_SUBJECT);
    assert_int_equal(request_code(tax_c, "residence-record", subject(6),
                                  TAX_PURPOSE, "C4", 0),
                     -ONCE_ERR_INVALID_SUBJECT);
}

static void test_unknown_type(void **state)
{
    once_record *r = NULL;
    once_error err;

    (void)state;
    assert_int_equal(request_code(tax_c, "no-such-type", subject(1),
                                  TAX_PURPOSE, "C5", 0),
                     -ONCE_ERR_UNKNOWN_TYPE);
    assert_int_equal(once_record_new(&r, "no-such-type", subject(7), 1,
                                     market.id, 0, 0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "x", &err), 0);
    assert_int_equal(once_record_sign(r, &market.kp, &err), 0);
    assert_int_equal(publish_code(market_c, r), -ONCE_ERR_UNKNOWN_TYPE);
}

static void test_not_issuer(void **state)
{
    (void)state;
    /* Tax signs a licence naming itself: it is not an issuer of the type. */
    assert_int_equal(publish_code(tax_c, licence(tax.id, &tax.kp, subject(8),
                                                 1, "Forged Co.", NULL)),
                     -ONCE_ERR_NOT_ISSUER);
}

static void test_invalid_record(void **state)
{
    once_record *r = NULL;
    once_error err;

    (void)state;
    /* A field the catalogue does not list. */
    assert_int_equal(publish_code(market_c, licence(market.id, &market.kp,
                                                    subject(9), 1, "Extra Co.",
                                                    "colour")),
                     -ONCE_ERR_INVALID_RECORD);
    /* Both may issue joint permits, but the header must name the sender. */
    assert_int_equal(once_record_new(&r, "joint-permit", subject(10), 1,
                                     tax.id, 0, 0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "x", &err), 0);
    assert_int_equal(once_record_sign(r, &market.kp, &err), 0);
    assert_int_equal(publish_code(market_c, r), -ONCE_ERR_INVALID_RECORD);
}

static void test_bad_record_signature(void **state)
{
    (void)state;
    /* Names market supervision as issuer but is signed with tax's key. */
    assert_int_equal(publish_code(market_c, licence(market.id, &tax.kp,
                                                    subject(11), 1,
                                                    "Unsigned Co.", NULL)),
                     -ONCE_ERR_BAD_SIGNATURE);
}

static void test_not_found(void **state)
{
    (void)state;
    assert_int_equal(request_code(tax_c, LICENCE, subject(12), TAX_PURPOSE,
                                  "C6", 0),
                     -ONCE_ERR_NOT_FOUND);
}

static void test_person_subject(void **state)
{
    char id[19];
    once_record *r = NULL;
    once_error err;

    (void)state;
    e2e_resident_id(id, 4242);
    assert_int_equal(once_record_new(&r, "residence-record", id, 1, police.id,
                                     0, 0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "Li Si", &err), 0);
    assert_int_equal(once_record_add_text(r, "address", "2 Xidan", &err), 0);
    assert_int_equal(once_record_sign(r, &police.kp, &err), 0);
    assert_int_equal(once_client_publish(police_c, r, &err), 0);
    once_record_free(r);
    assert_int_equal(once_client_request(tax_c, "residence-record", id,
                                         TAX_PURPOSE, "C7", 0, &r, &err), 0);
    assert_int_equal(once_record_verify(r, police.kp.public_key, &err), 0);
    assert_int_equal(once_record_disclosure_count(r), 1);
    once_record_free(r);
}

/* oncectl grant add / revoke apply to the running broker. */
static void test_grant_changes_apply_live(void **state)
{
    const char *s = subject(13);
    once_record *r = NULL;
    once_error err;

    (void)state;
    publish_ok(s, 1, "Bank Customer Co.");
    assert_int_equal(request_code(bank_c, LICENCE, s, BANK_PURPOSE, "B2", 0),
                     -ONCE_ERR_NO_GRANT);
    assert_int_equal(e2e_oncectl(&broker, "grant", "add", "--requester",
                                 bank.id, "--type", LICENCE, "--purpose",
                                 BANK_PURPOSE, "--fields",
                                 "name,legal_representative,"
                                 "registered_capital,address", NULL), 0);
    assert_int_equal(once_client_request(bank_c, LICENCE, s, BANK_PURPOSE,
                                         "B2", 0, &r, &err), 0);
    assert_int_equal(once_record_disclosure_count(r), 4);
    once_record_free(r);
    assert_int_equal(e2e_oncectl(&broker, "grant", "revoke", "--requester",
                                 bank.id, "--type", LICENCE, "--purpose",
                                 BANK_PURPOSE, NULL), 0);
    assert_int_equal(request_code(bank_c, LICENCE, s, BANK_PURPOSE, "B2", 0),
                     -ONCE_ERR_NO_GRANT);
}

/* oncectl dept suspend / resume apply to the running broker: a connected
 * department gets SUSPENDED, a new connection is refused at the handshake. */
static void test_suspend_applies_live(void **state)
{
    const char *s = subject(1);
    once_client *fresh = NULL;
    once_error err;

    (void)state;
    assert_int_equal(request_code(police_c, LICENCE, s, SEAL_PURPOSE, "S1",
                                  0), 0);
    assert_int_equal(e2e_oncectl(&broker, "dept", "suspend", police.id, NULL),
                     0);
    assert_int_equal(request_code(police_c, LICENCE, s, SEAL_PURPOSE, "S1",
                                  0),
                     -ONCE_ERR_SUSPENDED);
    e2e_open_client(&broker, &police, &fresh);
    assert_int_equal(once_client_ping(fresh, &err), -ONCE_ERR_UNKNOWN_SENDER);
    once_client_close(fresh);
    assert_true(e2e_log_contains(&broker, "department public-security is "
                                 "suspended"));

    assert_int_equal(e2e_oncectl(&broker, "dept", "resume", police.id, NULL),
                     0);
    e2e_open_client(&broker, &police, &fresh);
    assert_int_equal(once_client_ping(fresh, &err), 0);
    once_client_close(fresh);
    assert_int_equal(request_code(police_c, LICENCE, s, SEAL_PURPOSE, "S1",
                                  0), 0);
}

static void test_new_department_live(void **state)
{
    e2e_dept late;
    once_client *c = NULL;
    once_error err;

    (void)state;
    assert_int_equal(e2e_dept_add(&broker, &late, "late-arrival"), 0);
    e2e_open_client(&broker, &late, &c);
    assert_int_equal(once_client_ping(c, &err), 0);
    once_client_close(c);
}

static void test_unknown_key_refused(void **state)
{
    e2e_dept stranger;
    once_client *c = NULL;
    once_error err;

    (void)state;
    assert_int_equal(e2e_dept_keys(&broker, &stranger, "stranger"), 0);
    e2e_open_client(&broker, &stranger, &c);
    assert_int_equal(once_client_ping(c, &err), -ONCE_ERR_UNKNOWN_SENDER);
    once_client_close(c);
    /* A registered id with a key that is not its own fares no better. */
    snprintf(stranger.id, sizeof(stranger.id), "%s", tax.id);
    e2e_open_client(&broker, &stranger, &c);
    assert_int_equal(once_client_ping(c, &err), -ONCE_ERR_UNKNOWN_SENDER);
    once_client_close(c);
    assert_true(e2e_log_contains(&broker, "belongs to no registered "
                                 "department"));
}

/* The log names records by a keyed tag, never by credit code or ID. */
static void test_log_holds_no_subjects(void **state)
{
    size_t i;

    (void)state;
    assert_true(e2e_log_contains(&broker, "subject #"));
    for (i = 0; i < used_count && i < 64; i++)
        if (e2e_log_contains(&broker, used_subjects[i]))
            fail_msg("subject %zu appears in the broker log", i);
}

static void test_sigterm_exits_zero(void **state)
{
    (void)state;
    assert_int_equal(e2e_stop(&broker), 0);
    assert_true(e2e_log_contains(&broker, "SIGTERM received"));
    assert_true(e2e_log_contains(&broker, "info onced: stopped"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_granted_fields_only),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_revoked_answered_as_revoked),
        cmocka_unit_test(test_no_grant),
        cmocka_unit_test(test_missing_purpose),
        cmocka_unit_test(test_invalid_subject),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_not_issuer),
        cmocka_unit_test(test_invalid_record),
        cmocka_unit_test(test_bad_record_signature),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_person_subject),
        cmocka_unit_test(test_grant_changes_apply_live),
        cmocka_unit_test(test_suspend_applies_live),
        cmocka_unit_test(test_new_department_live),
        cmocka_unit_test(test_unknown_key_refused),
        cmocka_unit_test(test_log_holds_no_subjects),
        cmocka_unit_test(test_sigterm_exits_zero),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
