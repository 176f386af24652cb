/*
 * test_evidence.c - what a refusal makes the exchange log keep.
 *
 * A refused envelope padded to the 1 MiB limit used to be kept whole as
 * evidence, append-only and forever: one connection could fill the
 * broker's map in seconds. A refusal's envelope over EVIDENCE_REFUSAL_MAX
 * bytes is now kept as a 65-byte marker with its size and digest
 * (lib/evidence.c). Checked end to end: the refusal is still logged, the
 * export's evidence stays small, once-audit verifies the log, and it
 * refuses a marker where the envelope must be (a granted exchange).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sodium.h>

#include "evidence.h"
#include "harness.h"
#include "tlog_tiles.h"

#define LICENCE "business-licence"
#define PURPOSE "tax-registration"
#define ANSWER_TIMEOUT_MS 20000
/* A purpose this long is refused (TOO_LARGE) after the envelope verified,
 * so the refusal is logged. */
#define PADDED_PURPOSE_BYTES (900 * 1024)

static e2e_broker broker;
static e2e_dept market, tax;

static int setup(void **state)
{
    once_error err;
    char subject[19];

    (void)state;
    e2e_uscc(subject, 7800001);
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_enterprise_type(&broker, LICENCE, &market, "name", &tax, PURPOSE,
                            "name") != 0 ||
        e2e_start(&broker, &market, NULL) != 0)
        return -1;
    return e2e_publish_name(&broker, &market, LICENCE, subject,
                            "Evidence Co.", &err);
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

/* A request from tax with this purpose: the answer's code. want_proof
 * makes the broker sign a checkpoint, which the export ends at. */
static int tax_request(e2e_raw *r, uint64_t seq, const char *purpose,
                       bool want_proof, size_t *envelope_len)
{
    Once__Envelope *reply = NULL;
    uint8_t *body, *env;
    size_t body_len;
    char subject[19];
    int code;

    e2e_uscc(subject, 7800001);
    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, subject,
                                      purpose, "E-1", 0), 0);
    if (want_proof) {
        body = realloc(body, body_len + 2);
        assert_non_null(body);
        body[body_len++] = 0x30; /* field 6, want_proof */
        body[body_len++] = 1;
    }
    assert_int_equal(e2e_envelope(&env, envelope_len, tax.id, e2e_session(),
                                  seq, once_now_ms(),
                                  ONCE__KIND__KIND_REQUEST, body, body_len,
                                  &tax.kp), 0);
    assert_int_equal(e2e_raw_send(r, env, *envelope_len), 0);
    assert_int_equal(e2e_raw_recv(r, ANSWER_TIMEOUT_MS, &reply), 1);
    code = e2e_reply_code(reply);
    once__envelope__free_unpacked(reply, NULL);
    free(env);
    free(body);
    return code;
}

static uint32_t get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int verify(char **out, const char *dir)
{
    const char *audit = getenv("ONCE_AUDIT");

    assert_non_null(audit);
    return e2e_run(out, "'%s' verify '%s' --key '%s/broker.pub'", audit,
                   dir, broker.home);
}

static void test_large_refusal_keeps_a_marker(void **state)
{
    char *purpose = malloc(PADDED_PURPOSE_BYTES + 1);
    char dir[PATH_MAX], path[PATH_MAX + TLOG_PATH_MAX], tile[TLOG_PATH_MAX];
    size_t big_len, small_len, ok_len, len, at;
    unsigned markers = 0, envelopes = 0, i;
    uint64_t size;
    uint8_t digest[32], *bundle;
    e2e_raw r;
    char *out;

    (void)state;
    assert_non_null(purpose);
    memset(purpose, 'a', PADDED_PURPOSE_BYTES);
    purpose[PADDED_PURPOSE_BYTES] = '\0';
    assert_int_equal(e2e_raw_open(&r, &broker, &tax.kp), 0);
    assert_int_equal(tax_request(&r, 1, purpose, false, &big_len),
                     ONCE_ERR_TOO_LARGE);
    assert_true(big_len > PADDED_PURPOSE_BYTES);
    assert_int_equal(tax_request(&r, 1, "another-purpose", false,
                                 &small_len),
                     ONCE_ERR_NO_GRANT);
    assert_int_equal(tax_request(&r, 1, PURPOSE, true, &ok_len), 0);
    e2e_raw_close(&r);
    free(purpose);

    snprintf(dir, sizeof(dir), "%s/export", broker.dir);
    assert_int_equal(e2e_oncectl(&broker, "log", "export", dir, NULL), 0);
    /* Leaves: the publish, then the three requests. */
    assert_int_equal(tlog_tile_path(tile, sizeof(tile), "evidence", 0, 4),
                     0);
    snprintf(path, sizeof(path), "%s/%s", dir, tile);
    bundle = e2e_slurp(path, &len);
    assert_true(len < 4096);
    for (at = 0, i = 0; at + 4 <= len; i++) {
        uint32_t n = get_u32be(bundle + at);

        assert_true(n <= len - at - 4);
        if (evidence_omitted_parse(bundle + at + 4, n, &size, digest)) {
            assert_int_equal(size, big_len);
            markers++;
        } else {
            envelopes++;
        }
        at += 4 + n;
    }
    assert_int_equal(i, 4);
    assert_int_equal(markers, 1);
    assert_int_equal(envelopes, 3);

    /* once-audit verifies the log, the marker's digest against its
     * leaf's. */
    if (verify(&out, dir) != 0)
        fail_msg("once-audit: %s", out);
    assert_non_null(strstr(out, "evidence omitted"));
    free(out);

    /* A marker in place of a granted exchange's envelope (the last leaf)
     * is a failure, even with the right digest. */
    {
        uint8_t *changed = malloc(len + EVIDENCE_OMITTED_BYTES);
        size_t last = len - 4 - ok_len;

        assert_non_null(changed);
        assert_int_equal(get_u32be(bundle + last), ok_len);
        memcpy(changed, bundle, last + 4);
        crypto_hash_sha256(digest, bundle + last + 4, ok_len);
        evidence_omitted_encode(changed + last + 4, ok_len, digest);
        changed[last] = 0;
        changed[last + 1] = 0;
        changed[last + 2] = 0;
        changed[last + 3] = EVIDENCE_OMITTED_BYTES;
        e2e_spit(path, changed, last + 4 + EVIDENCE_OMITTED_BYTES);
        free(changed);
        assert_int_equal(verify(&out, dir), 1);
        assert_non_null(strstr(out, "leaf 3: evidence omitted"));
        free(out);
    }
    free(bundle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_refusal_keeps_a_marker),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
