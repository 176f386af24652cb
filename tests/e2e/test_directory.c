/*
 * test_directory.c - the broker's signed directory and prepared envelopes,
 * end to end against a real onced.
 *
 * The directory: what a department gets (every department with its key
 * and status, the catalogue, its own grants and nobody else's), that an
 * unchanged directory comes back without its content and a change made
 * with oncectl gives a new version at once, and that libonce refuses a
 * forged, stale or misaddressed one. Prepared envelopes: the bytes of a
 * publish sent twice, over two connections, give one version and the same
 * answer (what the REST gateway's Idempotency-Key relies on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "directory_signing.h"
#include "harness.h"

#define LICENCE "business-licence"

static e2e_broker broker;
static e2e_dept market, tax, bank;
static once_client *market_c, *tax_c;

static int setup(void **state)
{
    (void)state;
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &bank, "bank") != 0 ||
        e2e_oncectl(&broker, "type", "add", LICENCE, "--issuer", market.id,
                    "--subject", "enterprise", "--fields",
                    "name,legal_representative,address", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", tax.id, "--type",
                    LICENCE, "--purpose", "tax-registration", "--fields",
                    "name,address", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", bank.id,
                    "--type", LICENCE, "--purpose", "account-opening",
                    "--fields", "name", NULL) != 0 ||
        e2e_start(&broker, &market, NULL) != 0)
        return -1;
    e2e_open_client(&broker, &market, &market_c);
    e2e_open_client(&broker, &tax, &tax_c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    once_client_close(market_c);
    once_client_close(tax_c);
    e2e_cleanup(&broker);
    return 0;
}

static once_directory *fetch(once_client *c, const once_directory *known)
{
    once_directory *d = NULL;
    once_error err;

    if (once_client_directory(c, known, &d, &err) != 0)
        fail_msg("directory: %s", err.message);
    return d;
}

static void test_directory_content(void **state)
{
    once_directory *d = fetch(tax_c, NULL);
    once_directory_department dep;
    once_directory_type t;
    once_directory_grant g;

    (void)state;
    assert_int_equal(once_directory_department_count(d), 3);
    assert_int_equal(once_directory_find_department(d, market.id, &dep), 0);
    assert_memory_equal(dep.public_key, market.kp.public_key,
                        ONCE_PUBLIC_KEY_BYTES);
    assert_true(dep.active);
    assert_int_equal(once_directory_find_department(d, "nobody", &dep),
                     -ONCE_ERR_UNKNOWN_SENDER);
    assert_int_equal(once_directory_type_count(d), 1);
    assert_int_equal(once_directory_type_at(d, 0, &t), 0);
    assert_string_equal(t.name, LICENCE);
    assert_int_equal(t.subject_kind, ONCE_SUBJECT_ENTERPRISE);
    assert_int_equal(t.issuer_count, 1);
    assert_string_equal(t.issuers[0], market.id);
    assert_int_equal(t.field_count, 3);
    /* Only tax's own grant: the bank's is none of tax's business. */
    assert_int_equal(once_directory_grant_count(d), 1);
    assert_int_equal(once_directory_grant_at(d, 0, &g), 0);
    assert_string_equal(g.type, LICENCE);
    assert_string_equal(g.purpose, "tax-registration");
    assert_int_equal(g.field_count, 2);
    assert_int_equal(once_directory_grant_at(d, 1, &g),
                     -ONCE_ERR_INVALID_ARGUMENT);
    once_directory_free(d);
}

static void test_directory_versions(void **state)
{
    once_directory *first = fetch(tax_c, NULL), *again, *changed;
    once_directory_department dep;

    (void)state;
    again = fetch(tax_c, first);
    assert_memory_equal(once_directory_digest(again),
                        once_directory_digest(first), ONCE_DIGEST_BYTES);
    assert_true(once_directory_issued_at(again) >=
                once_directory_issued_at(first));
    assert_int_equal(once_directory_type_count(again), 1);
    /* A suspension is a new version, seen at once. */
    assert_int_equal(e2e_oncectl(&broker, "dept", "suspend", bank.id, NULL),
                     0);
    changed = fetch(tax_c, again);
    assert_memory_not_equal(once_directory_digest(changed),
                            once_directory_digest(first), ONCE_DIGEST_BYTES);
    assert_int_equal(once_directory_find_department(changed, bank.id, &dep),
                     0);
    assert_false(dep.active);
    assert_int_equal(e2e_oncectl(&broker, "dept", "resume", bank.id, NULL),
                     0);
    once_directory_free(first);
    once_directory_free(again);
    once_directory_free(changed);
}

/* A SignedDirectory signed with key over (department, issued_at, content),
 * serialized into a malloc'd buffer. */
static uint8_t *signed_directory(const once_keypair *key,
                                 const char *department, uint64_t issued_at,
                                 const char *content_for, size_t *len)
{
    Once__SignedDirectory sd = ONCE__SIGNED_DIRECTORY__INIT;
    Once__Directory dir = ONCE__DIRECTORY__INIT;
    uint8_t content[256], digest[32], sig[64];
    uint8_t input[DIRECTORY_SIGNING_INPUT_MAX];
    size_t content_len, input_len;
    uint8_t *out;

    dir.department = (char *)content_for;
    content_len = once__directory__pack(&dir, content);
    crypto_hash_sha256(digest, content, content_len);
    input_len = directory_signing_input(input, department, issued_at, digest);
    crypto_sign_detached(sig, NULL, input, input_len, key->secret_key);
    sd.directory.data = content;
    sd.directory.len = content_len;
    sd.digest.data = digest;
    sd.digest.len = 32;
    sd.issued_at = issued_at;
    sd.department = (char *)department;
    sd.signature.data = sig;
    sd.signature.len = 64;
    *len = once__signed_directory__get_packed_size(&sd);
    out = malloc(*len);
    once__signed_directory__pack(&sd, out);
    return out;
}

static int verify_code(const uint8_t *bytes, size_t len,
                       const once_directory *known)
{
    once_directory *d = NULL;
    once_error err;
    int rc = once_directory_verify(&d, bytes, len, broker.broker_pk, tax.id,
                                   known, &err);

    once_directory_free(d);
    return rc;
}

static void test_directory_refusals(void **state)
{
    char path[PATH_MAX + 16];
    once_keypair broker_key;
    once_directory *held;
    once_error err;
    uint64_t now = (uint64_t)time(NULL) * 1000u;
    uint8_t *b;
    size_t len;

    (void)state;
    snprintf(path, sizeof(path), "%s/broker.key", broker.home);
    assert_int_equal(once_keypair_load(&broker_key, path, &err), 0);
    /* The broker's own signature over a fresh directory: accepted. */
    b = signed_directory(&broker_key, tax.id, now, tax.id, &len);
    assert_int_equal(verify_code(b, len, NULL), 0);
    /* One flipped byte anywhere in the signed part: refused. */
    b[len - 1] ^= 1;
    assert_int_equal(verify_code(b, len, NULL), -ONCE_ERR_BAD_SIGNATURE);
    free(b);
    /* Signed by a department, not the broker: forged. */
    b = signed_directory(&market.kp, tax.id, now, tax.id, &len);
    assert_int_equal(verify_code(b, len, NULL), -ONCE_ERR_BAD_SIGNATURE);
    free(b);
    /* Stale: issued an hour ago, or before the one held. */
    b = signed_directory(&broker_key, tax.id, now - 3600000u, tax.id, &len);
    assert_int_equal(verify_code(b, len, NULL), -ONCE_ERR_CLOCK_SKEW);
    free(b);
    held = fetch(tax_c, NULL);
    b = signed_directory(&broker_key, tax.id,
                         once_directory_issued_at(held) - 1000u, tax.id,
                         &len);
    assert_int_equal(verify_code(b, len, held), -ONCE_ERR_CLOCK_SKEW);
    free(b);
    once_directory_free(held);
    /* Made for another department, in the signed part or the content. */
    b = signed_directory(&broker_key, bank.id, now, bank.id, &len);
    assert_int_equal(verify_code(b, len, NULL), -ONCE_ERR_INVALID_RECORD);
    free(b);
    b = signed_directory(&broker_key, tax.id, now, bank.id, &len);
    assert_int_equal(verify_code(b, len, NULL), -ONCE_ERR_INVALID_RECORD);
    free(b);
    assert_int_equal(verify_code((const uint8_t *)"\xff\xff", 2, NULL),
                     -ONCE_ERR_MALFORMED);
    once_keypair_wipe(&broker_key);
}

/* The answer code to a directory request with body, sent raw. */
static int raw_directory_code(e2e_raw *raw, uint64_t session, uint64_t seq,
                              const uint8_t *body, size_t len)
{
    Once__Envelope *reply = NULL;
    uint8_t *env;
    size_t env_len;
    int code;

    assert_int_equal(e2e_envelope(&env, &env_len, tax.id, session, seq,
                                  once_now_ms(),
                                  ONCE__KIND__KIND_DIRECTORY_REQUEST, body,
                                  len, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(raw, env, env_len), 0);
    free(env);
    assert_int_equal(e2e_raw_recv(raw, 10000, &reply), 1);
    code = reply->kind == ONCE__KIND__KIND_DIRECTORY ? 0
                                                    : e2e_reply_code(reply);
    once__envelope__free_unpacked(reply, NULL);
    return code;
}

/* The body is checked like every body: only its field, a 32-byte digest. */
static void test_directory_request_refusals(void **state)
{
    static const uint8_t unknown_field[] = { 0x12, 0x00 };
    static const uint8_t short_digest[] = { 0x0a, 0x01, 0x00 };
    uint64_t session = e2e_session();
    e2e_raw raw;

    (void)state;
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    assert_int_equal(raw_directory_code(&raw, session, 1, NULL, 0), 0);
    assert_int_equal(raw_directory_code(&raw, session, 2, unknown_field,
                                        sizeof(unknown_field)),
                     ONCE_ERR_MALFORMED);
    assert_int_equal(raw_directory_code(&raw, session, 3, short_digest,
                                        sizeof(short_digest)),
                     ONCE_ERR_MALFORMED);
    e2e_raw_close(&raw);
}

/* The same prepared bytes, sent over two connections: one version, the
 * same receipt, and other bytes of the same record version are refused. */
static void test_prepared_envelope_retry(void **state)
{
    once_receipt first = { 0 }, second = { 0 };
    once_client *other = NULL;
    once_record *r = NULL, *copy = NULL;
    uint8_t *env = NULL;
    size_t env_len;
    once_error err;
    char subject[19];

    (void)state;
    e2e_uscc(subject, 5100001);
    assert_int_equal(once_record_new(&r, LICENCE, subject, 1, market.id, 0,
                                     0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "Prepared Co", &err), 0);
    assert_int_equal(once_record_sign(r, &market.kp, &err), 0);
    assert_int_equal(once_client_prepare_write(market_c, r, 0, &env,
                                               &env_len, &err), 0);
    if (once_client_send_prepared(market_c, env, env_len, &first, &err) != 0)
        fail_msg("send: %s", err.message);
    e2e_open_client(&broker, &market, &other);
    if (once_client_send_prepared(other, env, env_len, &second, &err) != 0)
        fail_msg("resend: %s", err.message);
    assert_true(first.logged && second.logged);
    assert_int_equal(first.leaf_index, second.leaf_index);
    /* Another department cannot send market's bytes as its own. */
    assert_int_equal(once_client_send_prepared(tax_c, env, env_len, NULL,
                                               &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_client_request(tax_c, LICENCE, subject,
                                         "tax-registration", "C-1", 0, &copy,
                                         &err), 0);
    assert_int_equal(once_record_version(copy), 1);
    /* A fresh envelope of the same version is a second publish: stale. */
    assert_int_equal(once_client_publish(other, r, &err),
                     -ONCE_ERR_STALE_VERSION);
    once_record_free(copy);
    once_record_free(r);
    free(env);
    once_receipt_clear(&first);
    once_receipt_clear(&second);
    once_client_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_content),
        cmocka_unit_test(test_directory_versions),
        cmocka_unit_test(test_directory_refusals),
        cmocka_unit_test(test_directory_request_refusals),
        cmocka_unit_test(test_prepared_envelope_retry),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
