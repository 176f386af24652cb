/*
 * test_official.c - the acting official of a request and the reason of a
 * revocation, through a real onced (issue 9; PROTOCOL.md 4.2, 4.3).
 *
 * A request made with once_client_request_as names the official who asks;
 * the name must reach the request's log leaf (read back from the receipt's
 * leaf bytes, and from an export with once-audit, whose access report
 * prints it), and a request without one must make the leaf of before. A
 * name that is not clean text, or too long, is refused by libonce before
 * anything is sent (the next leaf follows the last one: nothing was
 * logged), and by the broker when a client sends it anyway (raw
 * envelopes): refused, and the refusal's leaf does not carry the name.
 *
 * A revocation's reason is signed into its header: a requester gets it
 * with the revoked status and checks it with the issuer's key, and the
 * broker refuses a reason on a record that is not revoked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "envelope.h"
#include "harness.h"
#include "record_internal.h"

#define LICENCE "business-licence"
#define TAX_PURPOSE "tax-registration"
#define BANK_PURPOSE "loan-review"
#define OFFICIAL "zhang.wei \xe5\xbc\xa0\xe4\xbc\x9f"
#define REASON "business deregistered 2026-03-01 \xe5\x90\x8a\xe9\x94\x80"
#define ANSWER_TIMEOUT_MS 20000

static e2e_broker broker;
static e2e_dept market, tax, bank;
static once_client *market_c, *tax_c, *bank_c;
static char licensed[19], revoked[19];

static int setup(void **state)
{
    once_error err;

    (void)state;
    e2e_uscc(licensed, 9100001);
    e2e_uscc(revoked, 9100002);
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &bank, "bank") != 0 ||
        e2e_enterprise_type(&broker, LICENCE, &market, "name", &tax,
                            TAX_PURPOSE, "name") != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", bank.id,
                    "--type", LICENCE, "--purpose", BANK_PURPOSE, "--fields",
                    "name", NULL) != 0 ||
        e2e_start(&broker, &market, NULL) != 0)
        return -1;
    if (e2e_client(&broker, &market, &market_c, &err) != 0 ||
        e2e_client(&broker, &tax, &tax_c, &err) != 0 ||
        e2e_client(&broker, &bank, &bank_c, &err) != 0 ||
        e2e_publish_name(&broker, &market, LICENCE, licensed, "Official Co.",
                         &err) != 0 ||
        e2e_publish_name(&broker, &market, LICENCE, revoked, "Gone Co.",
                         &err) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    once_client_close(market_c);
    once_client_close(tax_c);
    once_client_close(bank_c);
    e2e_cleanup(&broker);
    return 0;
}

/* The leaf of a receipt with a proof, decoded. */
static Once__LogLeaf *receipt_leaf(const once_receipt *receipt)
{
    Once__LogLeaf *leaf;

    assert_true(receipt->has_proof);
    leaf = once__log_leaf__unpack(NULL, receipt->leaf_len, receipt->leaf);
    assert_non_null(leaf);
    return leaf;
}

/* A granted request by tax about licensed, as user (NULL: as no one),
 * with a proof: its receipt. */
static void tax_request(const char *user, once_receipt *receipt)
{
    once_record *r = NULL;
    once_error err;
    int rc;

    rc = user != NULL
        ? once_client_request_as(tax_c, user, LICENCE, licensed, TAX_PURPOSE,
                                 "TAX-9-1", 0, 1, &r, receipt, &err)
        : once_client_request_ex(tax_c, LICENCE, licensed, TAX_PURPOSE,
                                 "TAX-9-1", 0, 1, &r, receipt, &err);
    if (rc != 0)
        fail_msg("request: %s", err.message);
    assert_int_equal(once_record_verify(r, market.kp.public_key, &err), 0);
    once_record_free(r);
}

/* The official is in the granted request's leaf, under the checkpoint's
 * proof; a request without one has a leaf without the field. */
static void test_user_lands_in_the_leaf(void **state)
{
    once_receipt with = { 0 }, without = { 0 };
    once_log_info info;
    Once__LogLeaf *leaf;
    once_error err;
    size_t n;

    (void)state;
    assert_int_equal(once_client_ping_ex(tax_c, &info, &err), 0);
    tax_request(OFFICIAL, &with);
    assert_int_equal(once_receipt_verify(&with, info.public_key, info.origin,
                                         &err), 0);
    leaf = receipt_leaf(&with);
    assert_string_equal(leaf->user, OFFICIAL);
    assert_string_equal(leaf->department, tax.id);
    assert_string_equal(leaf->purpose, TAX_PURPOSE);
    assert_int_equal(leaf->decision, ONCE__DECISION__DECISION_GRANTED);
    once__log_leaf__free_unpacked(leaf, NULL);

    tax_request(NULL, &without);
    leaf = receipt_leaf(&without);
    assert_string_equal(leaf->user, "");
    once__log_leaf__free_unpacked(leaf, NULL);
    /* Fields are written in number order. Without a user the leaf ends
     * with envelope_digest (field 12: key 0x62, 32 bytes), as every leaf
     * did before field 13; with one, it ends with the user (key
     * 13 << 3 | 2 = 0x6a, its length, its bytes). */
    assert_true(without.leaf_len > 34);
    assert_int_equal(without.leaf[without.leaf_len - 34], 0x62);
    assert_int_equal(without.leaf[without.leaf_len - 33], 32);
    n = strlen(OFFICIAL);
    assert_true(with.leaf_len > n + 2);
    assert_int_equal(with.leaf[with.leaf_len - n - 2], 0x6a);
    assert_int_equal(with.leaf[with.leaf_len - n - 1], n);
    assert_memory_equal(with.leaf + with.leaf_len - n, OFFICIAL, n);
    once_receipt_clear(&with);
    once_receipt_clear(&without);
}

/* libonce refuses a user the broker would refuse, and sends nothing: the
 * next request's leaf directly follows the last one's. */
static void test_user_refused_before_sending(void **state)
{
    char long_user[ONCE_MAX_USER + 2];
    once_receipt before = { 0 }, refused = { 0 }, after = { 0 };
    once_record *r = NULL;
    once_error err;

    (void)state;
    tax_request(OFFICIAL, &before);
    assert_int_equal(once_client_request_as(tax_c, "zhang\nGRANTED", LICENCE,
                                            licensed, TAX_PURPOSE, "TAX-9-2",
                                            0, 1, &r, &refused, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_null(r);
    assert_false(refused.logged);
    assert_int_equal(once_client_request_as(tax_c, "bidi\xe2\x80\xae", LICENCE,
                                            licensed, TAX_PURPOSE, "TAX-9-2",
                                            0, 1, &r, &refused, &err),
                     -ONCE_ERR_INVALID_TEXT);
    memset(long_user, 'u', ONCE_MAX_USER + 1);
    long_user[ONCE_MAX_USER + 1] = '\0';
    assert_int_equal(once_client_request_as(tax_c, long_user, LICENCE,
                                            licensed, TAX_PURPOSE, "TAX-9-2",
                                            0, 1, &r, &refused, &err),
                     -ONCE_ERR_TOO_LARGE);
    assert_false(refused.logged);
    assert_int_equal(once_client_request_as(tax_c, "", LICENCE, licensed,
                                            TAX_PURPOSE, "TAX-9-2", 0, 1, &r,
                                            &refused, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_client_request_as(tax_c, NULL, LICENCE, licensed,
                                            TAX_PURPOSE, "TAX-9-2", 0, 1, &r,
                                            &refused, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    /* Exactly the limit is a name like any other. */
    long_user[ONCE_MAX_USER] = '\0';
    tax_request(long_user, &after);
    assert_int_equal(after.leaf_index, before.leaf_index + 1);
    once_receipt_clear(&before);
    once_receipt_clear(&after);
}

/* A client that sends such a user anyway: the broker refuses it, and the
 * refusal's leaf does not carry the text. */
static void test_user_refused_by_the_broker(void **state)
{
    static const char *const users[] = {
        "zhang\tGRANTED\n", /* INVALID_TEXT */
        NULL,               /* ONCE_MAX_USER + 1 bytes: TOO_LARGE */
    };
    static const int codes[] = {ONCE_ERR_INVALID_TEXT, ONCE_ERR_TOO_LARGE};
    char long_user[ONCE_MAX_USER + 2];
    uint64_t session = e2e_session(), seq = 1;
    e2e_raw raw;
    size_t i;

    (void)state;
    memset(long_user, 'u', ONCE_MAX_USER + 1);
    long_user[ONCE_MAX_USER + 1] = '\0';
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    for (i = 0; i < 2; i++) {
        Once__Request q = ONCE__REQUEST__INIT;
        Once__Envelope *reply = NULL;
        Once__LogLeaf *leaf;
        Once__Error *e;
        uint8_t body[512], *env;
        size_t len;

        q.type = LICENCE;
        q.subject = licensed;
        q.purpose = TAX_PURPOSE;
        q.case_id = "TAX-9-3";
        q.user = (char *)(users[i] != NULL ? users[i] : long_user);
        q.want_proof = true;
        len = once__request__pack(&q, body);
        assert_int_equal(e2e_envelope(&env, &len, tax.id, session, seq,
                                      once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                      body, len, &tax.kp), 0);
        assert_int_equal(e2e_raw_send(&raw, env, len), 0);
        free(env);
        assert_int_equal(e2e_raw_recv(&raw, ANSWER_TIMEOUT_MS, &reply), 1);
        assert_int_equal(reply->reply_to, seq++);
        assert_int_equal(e2e_reply_code(reply), codes[i]);
        e = once__error__unpack(NULL, reply->body.len, reply->body.data);
        assert_non_null(e);
        assert_non_null(e->receipt);
        leaf = once__log_leaf__unpack(NULL, e->receipt->leaf.len,
                                      e->receipt->leaf.data);
        assert_non_null(leaf);
        assert_int_equal(leaf->decision, ONCE__DECISION__DECISION_REFUSED);
        assert_int_equal((int)leaf->error, codes[i]);
        assert_string_equal(leaf->user, "");
        once__log_leaf__free_unpacked(leaf, NULL);
        once__error__free_unpacked(e, NULL);
        once__envelope__free_unpacked(reply, NULL);
    }
    e2e_raw_close(&raw);
}

/* The issuer's reason reaches a requester inside the signed revocation. */
static void test_revocation_reason_reaches_the_requester(void **state)
{
    once_record *rev = NULL, *got = NULL;
    once_error err;

    (void)state;
    assert_int_equal(once_record_new_revocation_reason(
                         &rev, LICENCE, revoked, 2, market.id, REASON, &err),
                     0);
    assert_int_equal(once_record_sign(rev, &market.kp, &err), 0);
    if (once_client_revoke(market_c, rev, &err) != 0)
        fail_msg("revoke: %s", err.message);
    once_record_free(rev);

    if (once_client_request_as(bank_c, "li.na", LICENCE, revoked,
                               BANK_PURPOSE, "LOAN-7", 0, 0, &got, NULL,
                               &err) != 0)
        fail_msg("request: %s", err.message);
    assert_int_equal(once_record_verify(got, market.kp.public_key, &err), 0);
    assert_int_equal(once_record_status_of(got), ONCE_STATUS_REVOKED);
    assert_int_equal(once_record_version(got), 2);
    assert_string_equal(once_record_reason(got), REASON);
    assert_int_equal(once_record_disclosure_count(got), 0);
    once_record_free(got);

    /* An older version asked for is answered with the revocation too. */
    assert_int_equal(once_client_request(tax_c, LICENCE, revoked, TAX_PURPOSE,
                                         "TAX-9-4", 1, &got, &err), 0);
    assert_string_equal(once_record_reason(got), REASON);
    once_record_free(got);
}

/* A valid record whose header carries a reason (which libonce does not
 * build), otherwise a publish the broker would store: refused
 * INVALID_RECORD, and not stored. */
static void test_reason_on_a_valid_record_refused(void **state)
{
    static const uint8_t salt[ONCE_SALT_BYTES] = {1};
    Once__RecordHeader h = ONCE__RECORD_HEADER__INIT;
    Once__FieldDigest f = ONCE__FIELD_DIGEST__INIT, *fp = &f;
    Once__SignedRecord rec = ONCE__SIGNED_RECORD__INIT;
    Once__Disclosure d = ONCE__DISCLOSURE__INIT, *dp = &d;
    Once__Publish body = ONCE__PUBLISH__INIT;
    uint8_t digest[ONCE_DIGEST_BYTES], header[512], sig[64], packed[1024];
    uint8_t input[RECORD_DOMAIN_BYTES + sizeof(header)], *env;
    uint64_t session = e2e_session();
    Once__Envelope *reply = NULL;
    once_record *got = NULL;
    size_t header_len, len;
    once_error err;
    Once__Error *e;
    e2e_raw raw;

    (void)state;
    assert_int_equal(record_disclosure_digest(salt, "name",
                                              (const uint8_t *)"X", 1,
                                              digest), 0);
    f.name = "name";
    f.digest.data = digest;
    f.digest.len = sizeof(digest);
    h.type = LICENCE;
    h.subject = licensed;
    h.version = 5;
    h.issuer = (char *)market.id;
    h.issued_at = once_now_ms();
    h.status = ONCE__RECORD_STATUS__STATUS_VALID;
    h.n_fields = 1;
    h.fields = &fp;
    h.reason = "not a revocation";
    assert_true(once__record_header__get_packed_size(&h) <= sizeof(header));
    header_len = once__record_header__pack(&h, header);
    memcpy(input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    memcpy(input + RECORD_DOMAIN_BYTES, header, header_len);
    crypto_sign_detached(sig, NULL, input, RECORD_DOMAIN_BYTES + header_len,
                         market.kp.secret_key);
    rec.header.data = header;
    rec.header.len = header_len;
    rec.signature.data = sig;
    rec.signature.len = sizeof(sig);
    d.salt.data = (uint8_t *)salt;
    d.salt.len = sizeof(salt);
    d.name = "name";
    d.value.data = (uint8_t *)"X";
    d.value.len = 1;
    body.record = &rec;
    body.n_disclosures = 1;
    body.disclosures = &dp;
    len = once__publish__pack(&body, packed);
    assert_int_equal(e2e_envelope(&env, &len, market.id, session, 1,
                                  once_now_ms(), ONCE__KIND__KIND_PUBLISH,
                                  packed, len, &market.kp), 0);
    assert_int_equal(e2e_raw_open(&raw, &broker, &market.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env, len), 0);
    free(env);
    assert_int_equal(e2e_raw_recv(&raw, ANSWER_TIMEOUT_MS, &reply), 1);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_INVALID_RECORD);
    e = once__error__unpack(NULL, reply->body.len, reply->body.data);
    assert_non_null(e);
    assert_non_null(strstr(e->message, "only a revocation has a reason"));
    once__error__free_unpacked(e, NULL);
    once__envelope__free_unpacked(reply, NULL);
    e2e_raw_close(&raw);
    /* Version 1 is still the latest. */
    assert_int_equal(once_client_request(tax_c, LICENCE, licensed,
                                         TAX_PURPOSE, "TAX-9-5", 0, &got,
                                         &err), 0);
    assert_int_equal(once_record_version(got), 1);
    assert_int_equal(once_record_status_of(got), ONCE_STATUS_VALID);
    once_record_free(got);
}

/* once-audit's access report names the official; verify holds the leaf's
 * user to the signed request's. */
static void test_access_report_names_the_official(void **state)
{
    char dir[PATH_MAX], *out = NULL;
    const char *audit = getenv("ONCE_AUDIT");
    char proof[PATH_MAX + 32], index[24] = "";
    const char *p;
    int rc, rows = 0, named = 0;

    (void)state;
    assert_non_null(audit);
    snprintf(dir, sizeof(dir), "%s/export-official", broker.dir);
    assert_int_equal(e2e_oncectl(&broker, "log", "export", dir, NULL), 0);
    rc = e2e_run(&out, "'%s' verify '%s' --key '%s/broker.pub' "
                 "--audit-key '%s/audit.key'", audit, dir, broker.home,
                 broker.home);
    if (rc != 0)
        fail_msg("verify: %s", out);
    free(out);
    rc = e2e_run(&out, "'%s' subject '%s' --audit-key '%s/audit.key' "
                 "--type %s --subject %s", audit, dir, broker.home, LICENCE,
                 licensed);
    if (rc != 0)
        fail_msg("subject: %s", out);
    assert_non_null(strstr(out, "\tdecision\tofficial\n"));
    /* Rows end with the official: the name, or nothing. */
    for (p = out; (p = strchr(p, '\n')) != NULL && p[1] != '\0'; p++) {
        const char *end = strchr(p + 1, '\n');
        const char *tab;

        if (p[1] < '0' || p[1] > '9' || end == NULL)
            continue;
        rows++;
        for (tab = end; tab > p && *tab != '\t'; tab--)
            ;
        if ((size_t)(end - tab - 1) == strlen(OFFICIAL) &&
            strncmp(tab + 1, OFFICIAL, strlen(OFFICIAL)) == 0 &&
            named++ == 0)
            sscanf(p + 1, "%23[0-9]", index);
    }
    assert_true(rows >= 4);
    /* tax_request(OFFICIAL) ran twice (test_user_lands_in_the_leaf,
     * test_user_refused_before_sending). */
    if (named != 2)
        fail_msg("%d rows name " OFFICIAL ":\n%s", named, out);
    free(out);

    /* A proof of that exchange for someone else names the official too. */
    snprintf(proof, sizeof(proof), "%s/official.tlog-proof", broker.dir);
    rc = e2e_run(&out, "'%s' prove '%s' %s -o '%s' && '%s' check-proof "
                 "'%s' --key '%s/broker.pub'", audit, dir, index, proof,
                 audit, proof, broker.home);
    if (rc != 0 || strstr(out, "official \"" OFFICIAL "\" GRANTED") == NULL)
        fail_msg("prove, check-proof: %s", out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_lands_in_the_leaf),
        cmocka_unit_test(test_user_refused_before_sending),
        cmocka_unit_test(test_user_refused_by_the_broker),
        cmocka_unit_test(test_revocation_reason_reaches_the_requester),
        cmocka_unit_test(test_reason_on_a_valid_record_refused),
        cmocka_unit_test(test_access_report_names_the_official),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
