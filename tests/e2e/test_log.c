/*
 * test_log.c - the exchange log through a real onced: receipts, retries,
 * the export and once-audit, and a kill -9 in the middle of traffic.
 *
 * Why end to end: the log's promises are about the running broker (every
 * exchange, refusals included, has a leaf before its answer leaves; a
 * retry gets its original receipt; the tree after a crash extends every
 * checkpoint signed before it) and about what an auditor can check with
 * nothing but the broker's public key. So traffic goes through libonce and
 * raw CURVE sockets, the log is exported with oncectl and checked with
 * once-audit, as an operator and an auditor would.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "tlog_tiles.h"

#define LICENCE "business-licence"
#define TAX_PURPOSE "tax-registration"
#define ORIGIN_FILE "once.conf"

static e2e_broker broker;
static e2e_dept market, tax, bank;
static once_client *market_c, *tax_c, *bank_c;
static char origin[256];
static char subject_a[19], subject_b[19];
/* Requests made about subject_a under LICENCE, granted or refused. */
static unsigned requests_about_a;

static once_record *licence(const char *subj, uint64_t version,
                            const once_keypair *signer)
{
    once_record *r = NULL;
    once_error err;

    assert_int_equal(once_record_new(&r, LICENCE, subj, version, market.id,
                                     1700000000000ull, 0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "Example Co.", &err), 0);
    assert_int_equal(once_record_add_text(r, "address", "1 Main St", &err),
                     0);
    assert_int_equal(once_record_sign(r, signer, &err), 0);
    return r;
}

static void audit_cmd(char *buf, size_t cap)
{
    const char *a = getenv("ONCE_AUDIT");

    assert_non_null(a);
    snprintf(buf, cap, "%s", a);
}

static void export_log(const char *dir)
{
    assert_int_equal(e2e_oncectl(&broker, "log", "export", dir, NULL), 0);
}

/* Copies the export dir to broker.dir/name, to damage the copy. */
static void copy_export(char *copy, size_t cap, const char *dir,
                        const char *name)
{
    char *out;

    snprintf(copy, cap, "%s/%s", broker.dir, name);
    if (e2e_run(&out, "cp -a '%s' '%s'", dir, copy) != 0)
        fail_msg("cp: %s", out);
    free(out);
}

/* once-audit verify of dir with the broker's key and the extra arguments
 * (a printf format): its exit status, and what it printed in *out. */
static int verify_export(char **out, const char *dir, const char *extra, ...)
    __attribute__((format(printf, 3, 4)));

static int verify_export(char **out, const char *dir, const char *extra, ...)
{
    char audit[PATH_MAX], args[PATH_MAX + 64];
    va_list ap;

    audit_cmd(audit, sizeof(audit));
    va_start(ap, extra);
    vsnprintf(args, sizeof(args), extra, ap);
    va_end(ap);
    return e2e_run(out, "'%s' verify '%s' --key '%s/broker.pub' %s", audit,
                   dir, broker.home, args);
}

/* Every FAIL line names token, and there is one. */
static bool fails_all_name(const char *out, const char *token)
{
    const char *p = out;
    bool seen = false;

    while ((p = strstr(p, "FAIL ")) != NULL) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];

        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        if (strstr(line, token) == NULL) {
            print_error("FAIL line without %s: %s\n", token, line);
            return false;
        }
        seen = true;
        p += n;
    }
    return seen;
}

/* The largest size below `below` that has a file in DIR/checkpoints. */
static uint64_t newest_checkpoint_below(const char *dir, uint64_t below)
{
    char path[PATH_MAX + 128];
    struct dirent *de;
    uint64_t best = 0;
    bool found = false;
    DIR *d;

    snprintf(path, sizeof(path), "%s/checkpoints", dir);
    d = opendir(path);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char *end;
        unsigned long long n = strtoull(de->d_name, &end, 10);

        if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end != '\0' ||
            n >= below)
            continue;
        if (!found || n > best)
            best = n;
        found = true;
    }
    closedir(d);
    assert_true(found);
    return best;
}

/* The tree size of an export's checkpoint. */
static uint64_t export_size(const char *dir)
{
    char path[PATH_MAX + 32];
    uint8_t *data;
    size_t len;
    char *nl;
    uint64_t size;

    snprintf(path, sizeof(path), "%s/checkpoint", dir);
    data = e2e_slurp(path, &len);
    nl = strchr((char *)data, '\n');
    assert_non_null(nl);
    size = strtoull(nl + 1, NULL, 10);
    free(data);
    return size;
}

/* Flips one byte of entry `index` of a bundle (len_bytes-byte lengths). */
static void flip_in_bundle(const char *dir, const char *prefix, int len_bytes,
                           uint64_t size, uint64_t index, bool at_end)
{
    char rel[TLOG_PATH_MAX], path[PATH_MAX + TLOG_PATH_MAX];
    uint64_t b = index / TLOG_TILE_WIDTH;
    size_t len, pos = 0, n = 0;
    uint8_t *data;
    unsigned i;
    int j;

    tlog_tile_path(rel, sizeof(rel), prefix, b, tlog_tile_width(size, 0, b));
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    data = e2e_slurp(path, &len);
    for (i = 0; i <= index % TLOG_TILE_WIDTH; i++) {
        for (n = 0, j = 0; j < len_bytes; j++)
            n = (n << 8) | data[pos + (size_t)j];
        pos += (size_t)len_bytes;
        if (i < index % TLOG_TILE_WIDTH)
            pos += n;
    }
    data[pos + (at_end ? n - 1 : n / 2)] ^= 0x01;
    e2e_spit(path, data, len);
    free(data);
}

static int setup(void **state)
{
    char path[PATH_MAX + 16], *line, *conf;
    size_t len;
    once_error err;

    (void)state;
    e2e_uscc(subject_a, 5100001);
    e2e_uscc(subject_b, 5100002);
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &bank, "bank") != 0 ||
        e2e_enterprise_type(&broker, LICENCE, &market, "name,address", &tax,
                            TAX_PURPOSE, "name") != 0 ||
        e2e_start(&broker, &market, NULL) != 0)
        return -1;
    if (e2e_client(&broker, &market, &market_c, &err) != 0 ||
        e2e_client(&broker, &tax, &tax_c, &err) != 0 ||
        e2e_client(&broker, &bank, &bank_c, &err) != 0)
        return -1;
    /* The log's origin, as oncectl init wrote it. */
    snprintf(path, sizeof(path), "%s/" ORIGIN_FILE, broker.home);
    conf = (char *)e2e_slurp(path, &len);
    line = strstr(conf, "log_origin");
    if (line == NULL || sscanf(line, "log_origin = %255[^\n]", origin) != 1) {
        free(conf);
        return -1;
    }
    free(conf);
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

/* Granted and refused exchanges carry receipts whose proofs verify; a
 * changed proof, checkpoint or leaf does not. */
static void test_receipts(void **state)
{
    once_receipt rc1 = { 0 }, rc2 = { 0 }, rc3 = { 0 }, plain = { 0 };
    once_record *r = NULL, *got = NULL;
    once_error err;
    uint64_t first;

    (void)state;
    r = licence(subject_a, 1, &market.kp);
    if (once_client_publish_ex(market_c, r, 1, &rc1, &err) != 0)
        fail_msg("publish: %s", err.message);
    once_record_free(r);
    assert_true(rc1.logged && rc1.has_proof);
    assert_int_equal(once_receipt_verify(&rc1, broker.broker_pk, origin,
                                         &err), 0);
    first = rc1.leaf_index;

    if (once_client_request_ex(tax_c, LICENCE, subject_a, TAX_PURPOSE, "T-1",
                               0, 1, &got, &rc2, &err) != 0)
        fail_msg("request: %s", err.message);
    requests_about_a++;
    once_record_free(got);
    assert_true(rc2.logged && rc2.has_proof);
    assert_true(rc2.leaf_index > first);
    assert_int_equal(once_receipt_verify(&rc2, broker.broker_pk, origin,
                                         &err), 0);

    /* A refusal is logged and proven too. */
    got = NULL;
    assert_int_equal(once_client_request_ex(bank_c, LICENCE, subject_a,
                                            "account-opening", "B-1", 0, 1,
                                            &got, &rc3, &err),
                     -ONCE_ERR_NO_GRANT);
    requests_about_a++;
    assert_null(got);
    assert_true(rc3.logged && rc3.has_proof);
    assert_true(rc3.leaf_index > rc2.leaf_index);
    assert_int_equal(once_receipt_verify(&rc3, broker.broker_pk, origin,
                                         &err), 0);

    /* Without want_proof: the index only. */
    assert_int_equal(once_client_request_ex(tax_c, LICENCE, subject_b,
                                            TAX_PURPOSE, "T-2", 0, 0, &got,
                                            &plain, &err),
                     -ONCE_ERR_NOT_FOUND);
    assert_true(plain.logged && !plain.has_proof);
    assert_true(plain.leaf_index > rc3.leaf_index);
    assert_int_equal(once_receipt_verify(&plain, broker.broker_pk, origin,
                                         &err), -ONCE_ERR_INVALID_ARGUMENT);

    /* Tampering. */
    if (rc2.proof_len > 0) {
        rc2.proof[0][7] ^= 0x01;
        assert_int_equal(once_receipt_verify(&rc2, broker.broker_pk, origin,
                                             &err),
                         -ONCE_ERR_INVALID_RECORD);
        rc2.proof[0][7] ^= 0x01;
    }
    rc2.leaf_index++;
    assert_int_not_equal(once_receipt_verify(&rc2, broker.broker_pk, origin,
                                             &err), 0);
    rc2.leaf_index--;
    rc2.leaf[rc2.leaf_len - 1] ^= 0x01;
    assert_int_not_equal(once_receipt_verify(&rc2, broker.broker_pk, origin,
                                             &err), 0);
    rc2.leaf[rc2.leaf_len - 1] ^= 0x01;
    rc2.checkpoint[rc2.checkpoint_len - 5] ^= 0x01;
    assert_int_equal(once_receipt_verify(&rc2, broker.broker_pk, origin,
                                         &err), -ONCE_ERR_BAD_SIGNATURE);
    rc2.checkpoint[rc2.checkpoint_len - 5] ^= 0x01;
    assert_int_equal(once_receipt_verify(&rc2, broker.broker_pk, origin,
                                         &err), 0);
    assert_int_equal(once_receipt_verify(&rc2, broker.broker_pk, "other",
                                         &err), -ONCE_ERR_BAD_SIGNATURE);
    /* Another envelope's receipt is not this one's. */
    memcpy(rc3.envelope_digest, rc2.envelope_digest, 32);
    assert_int_equal(once_receipt_verify(&rc3, broker.broker_pk, origin,
                                         &err), -ONCE_ERR_INVALID_RECORD);

    /* A record whose issuer signature fails is refused BAD_SIGNATURE
     * with a good envelope; once-audit accepts that (test_export). */
    r = licence(subject_b, 1, &tax.kp);
    assert_int_equal(once_client_publish(market_c, r, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    once_record_free(r);

    once_receipt_clear(&rc1);
    once_receipt_clear(&rc2);
    once_receipt_clear(&rc3);
    once_receipt_clear(&plain);
}

/* A request body with want_proof set (field 6). */
static void proof_request(uint8_t **body, size_t *len, const char *subj,
                          const char *case_id)
{
    assert_int_equal(e2e_request_body(body, len, LICENCE, subj, TAX_PURPOSE,
                                      case_id, 0), 0);
    *body = realloc(*body, *len + 2);
    assert_non_null(*body);
    (*body)[(*len)++] = 6 << 3;
    (*body)[(*len)++] = 1;
}

static Once__Response *response_of(const Once__Envelope *reply)
{
    assert_int_equal(e2e_reply_code(reply), 0);
    return once__response__unpack(NULL, reply->body.len, reply->body.data);
}

/* The same envelope again, even after a restart, gets the same answer
 * with the same receipt and adds no leaf; a refused envelope signed with
 * another key is logged as BAD_SIGNATURE. */
static void test_retry_same_receipt(void **state)
{
    uint64_t session = e2e_session(), seq = 1, size_before;
    Once__Envelope *a = NULL, *b = NULL, *c = NULL, *bad = NULL;
    Once__Response *ra, *rc;
    uint8_t *body, *env;
    size_t body_len, env_len;
    e2e_raw raw;
    char dir[PATH_MAX + 32];
    once_error err;

    (void)state;
    proof_request(&body, &body_len, subject_a, "T-retry");
    assert_int_equal(e2e_envelope(&env, &env_len, tax.id, session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, body_len, &tax.kp), 0);
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &a), 1);
    requests_about_a++;
    assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &b), 1);
    assert_int_equal(a->body.len, b->body.len);
    assert_memory_equal(a->body.data, b->body.data, a->body.len);
    e2e_raw_close(&raw);

    snprintf(dir, sizeof(dir), "%s/export-retry", broker.dir);
    export_log(dir);
    size_before = export_size(dir);

    /* After a restart the memory window is empty: the replies table
     * answers. */
    assert_int_equal(e2e_stop(&broker), 0);
    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    once_client_close(market_c);
    once_client_close(tax_c);
    once_client_close(bank_c);
    assert_int_equal(e2e_client(&broker, &market, &market_c, &err), 0);
    assert_int_equal(e2e_client(&broker, &tax, &tax_c, &err), 0);
    assert_int_equal(e2e_client(&broker, &bank, &bank_c, &err), 0);
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &c), 1);
    assert_int_equal(a->body.len, c->body.len);
    assert_memory_equal(a->body.data, c->body.data, a->body.len);
    ra = response_of(a);
    rc = response_of(c);
    assert_non_null(ra->receipt);
    assert_non_null(rc->receipt);
    assert_int_equal(ra->receipt->leaf_index, rc->receipt->leaf_index);
    assert_true(ra->receipt->checkpoint.len > 0);
    once__response__free_unpacked(ra, NULL);
    once__response__free_unpacked(rc, NULL);
    free(env);

    /* Signed by market's key under tax's name: BAD_SIGNATURE, logged. */
    assert_int_equal(e2e_envelope(&env, &env_len, tax.id, session, seq + 1,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, body_len, &market.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &bad), 1);
    assert_int_equal(e2e_reply_code(bad), ONCE_ERR_BAD_SIGNATURE);
    {
        Once__Error *e = once__error__unpack(NULL, bad->body.len,
                                             bad->body.data);

        assert_non_null(e);
        assert_non_null(e->receipt);
        /* The retry added no leaf; this refusal is the next one. */
        assert_int_equal(e->receipt->leaf_index, size_before);
        once__error__free_unpacked(e, NULL);
    }
    e2e_raw_close(&raw);
    free(env);
    free(body);
    once__envelope__free_unpacked(a, NULL);
    once__envelope__free_unpacked(b, NULL);
    once__envelope__free_unpacked(c, NULL);
    once__envelope__free_unpacked(bad, NULL);
}

/* Restarts the broker and reopens the clients (the memory window is then
 * empty: only the replies table knows what was answered). */
static void restart_broker(void)
{
    once_error err;

    assert_int_equal(e2e_stop(&broker), 0);
    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    once_client_close(market_c);
    once_client_close(tax_c);
    once_client_close(bank_c);
    assert_int_equal(e2e_client(&broker, &market, &market_c, &err), 0);
    assert_int_equal(e2e_client(&broker, &tax, &tax_c, &err), 0);
    assert_int_equal(e2e_client(&broker, &bank, &bank_c, &err), 0);
}

/* Replaces tax's grant of LICENCE with one of these fields. */
static void set_tax_grant(const char *fields)
{
    assert_int_equal(e2e_oncectl(&broker, "grant", "revoke", "--requester",
                                 tax.id, "--type", LICENCE, "--purpose",
                                 TAX_PURPOSE, NULL), 0);
    assert_int_equal(e2e_oncectl(&broker, "grant", "add", "--requester",
                                 tax.id, "--type", LICENCE, "--purpose",
                                 TAX_PURPOSE, "--fields", fields, NULL), 0);
}

/* A granted request without a proof keeps its answer as what rebuilds it
 * (replies.c): its retry after a restart gets the original's bytes, with
 * the disclosures granted then, although the grant has grown since. */
static void test_retry_rebuilt_answer(void **state)
{
    uint64_t session = e2e_session();
    Once__Envelope *a = NULL, *c = NULL, *d = NULL;
    Once__Response *ra;
    uint8_t *body, *body2, *env, *env2;
    size_t body_len, body2_len, env_len, env2_len;
    e2e_raw raw;

    (void)state;
    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, subject_a,
                                      TAX_PURPOSE, "T-rebuilt", 0), 0);
    assert_int_equal(e2e_envelope(&env, &env_len, tax.id, session, 1,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, body_len, &tax.kp), 0);
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &a), 1);
    requests_about_a++;
    ra = response_of(a);
    assert_non_null(ra);
    assert_non_null(ra->record);
    assert_non_null(ra->receipt);
    assert_int_equal(ra->n_disclosures, 1);
    assert_string_equal(ra->disclosures[0]->name, "name");
    e2e_raw_close(&raw);

    set_tax_grant("name,address");
    restart_broker();
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &c), 1);
    assert_int_equal(c->kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(a->body.len, c->body.len);
    assert_memory_equal(a->body.data, c->body.data, a->body.len);

    /* A new request is answered under the grant as it is now (with a
     * proof, so that a checkpoint covers its leaf for the export below). */
    proof_request(&body2, &body2_len, subject_a, "T-rebuilt-2");
    assert_int_equal(e2e_envelope(&env2, &env2_len, tax.id, session, 2,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body2, body2_len, &tax.kp), 0);
    assert_int_equal(e2e_raw_send(&raw, env2, env2_len), 0);
    assert_int_equal(e2e_raw_recv(&raw, 20000, &d), 1);
    requests_about_a++;
    {
        Once__Response *rd = response_of(d);

        assert_non_null(rd);
        assert_int_equal(rd->n_disclosures, 2);
        once__response__free_unpacked(rd, NULL);
    }
    e2e_raw_close(&raw);
    set_tax_grant("name");
    once__response__free_unpacked(ra, NULL);
    once__envelope__free_unpacked(a, NULL);
    once__envelope__free_unpacked(c, NULL);
    once__envelope__free_unpacked(d, NULL);
    free(env);
    free(env2);
    free(body);
    free(body2);
}

/* The export verifies; one changed byte in a leaf, a tile, a checkpoint
 * signature or an evidence envelope is named; the citizen's report lists
 * exactly the requests about them. */
static void test_export_and_audit(void **state)
{
    char dir[PATH_MAX + 32], copy[PATH_MAX + 64];
    char path[PATH_MAX + 64 + TLOG_PATH_MAX];
    char audit[PATH_MAX], token[TLOG_PATH_MAX + 32], *out, *p;
    uint8_t *data;
    size_t len;
    uint64_t size;
    unsigned lines = 0;
    int rc;

    (void)state;
    audit_cmd(audit, sizeof(audit));
    snprintf(dir, sizeof(dir), "%s/export", broker.dir);
    export_log(dir);
    size = export_size(dir);
    assert_true(size >= 6);
    rc = verify_export(&out, dir, "--audit-key '%s/audit.key'",
                       broker.home);
    if (rc != 0)
        fail_msg("verify: %s", out);
    free(out);

    /* A leaf. */
    copy_export(copy, sizeof(copy), dir, "copy-leaf");
    flip_in_bundle(copy, "tile/entries", 2, size, 1, false);
    rc = verify_export(&out, copy, "%s", "");
    if (rc != 1 || !fails_all_name(out, "leaf 1:"))
        fail_msg("changed leaf: %s", out);
    free(out);

    /* A hash tile (level 0, hash 2). */
    copy_export(copy, sizeof(copy), dir, "copy-tile");
    {
        char rel[TLOG_PATH_MAX];

        tlog_tile_path(rel, sizeof(rel), "tile/0", 0,
                       tlog_tile_width(size, 0, 0));
        snprintf(path, sizeof(path), "%s/%s", copy, rel);
        snprintf(token, sizeof(token), "%s: hash 2 ", rel);
    }
    data = e2e_slurp(path, &len);
    data[2 * 32 + 3] ^= 0x80;
    e2e_spit(path, data, len);
    free(data);
    rc = verify_export(&out, copy, "%s", "");
    if (rc != 1 || !fails_all_name(out, token))
        fail_msg("changed tile: %s", out);
    free(out);

    /* A checkpoint's signature. */
    copy_export(copy, sizeof(copy), dir, "copy-checkpoint");
    {
        /* The newest one below the export's size: the writer signs at
         * its own cadence, so which sizes have one is not fixed. */
        uint64_t cp_size = newest_checkpoint_below(copy, size);

        snprintf(path, sizeof(path), "%s/checkpoints/%llu", copy,
                 (unsigned long long)cp_size);
        snprintf(token, sizeof(token), "checkpoints/%llu:",
                 (unsigned long long)cp_size);
    }
    data = e2e_slurp(path, &len);
    data[len - 20] = data[len - 20] == 'A' ? 'B' : 'A';
    e2e_spit(path, data, len);
    free(data);
    rc = verify_export(&out, copy, "%s", "");
    if (rc != 1 || !fails_all_name(out, token))
        fail_msg("changed checkpoint: %s", out);
    free(out);

    /* An evidence envelope (the last byte of its signature). */
    copy_export(copy, sizeof(copy), dir, "copy-evidence");
    flip_in_bundle(copy, "evidence", 4, size, 2, true);
    rc = verify_export(&out, copy, "%s", "");
    if (rc != 1 || !fails_all_name(out, "leaf 2:"))
        fail_msg("changed evidence: %s", out);
    free(out);

    /* The citizen's access report. */
    rc = e2e_run(&out, "'%s' subject '%s' --audit-key '%s/audit.key' "
                 "--type %s --subject %s", audit, dir, broker.home, LICENCE,
                 subject_a);
    if (rc != 0)
        fail_msg("subject: %s", out);
    assert_null(strstr(out, subject_a));
    for (p = out; (p = strstr(p, "\trequest\t")) != NULL; p++)
        lines++;
    if (lines != requests_about_a)
        fail_msg("%u requests listed, %u made: %s", lines, requests_about_a,
                 out);
    assert_non_null(strstr(out, "tax\trequest"));
    assert_non_null(strstr(out, "bank\trequest"));
    assert_non_null(strstr(out, "REFUSED NO_GRANT"));
    free(out);
}

/* kill -9 with requests in flight: after a restart the log extends every
 * checkpoint signed before the kill. */
static void test_kill_during_traffic(void **state)
{
    char dir[PATH_MAX + 32], kept[PATH_MAX + 32], audit[PATH_MAX], *out;
    uint64_t session = e2e_session();
    Once__Envelope *reply = NULL;
    Once__Response *r;
    uint8_t *body, *env;
    size_t body_len, env_len;
    e2e_raw raw;
    once_error err;
    int i, rc, answered = 0;

    (void)state;
    audit_cmd(audit, sizeof(audit));
    snprintf(kept, sizeof(kept), "%s/kept.checkpoint", broker.dir);
    proof_request(&body, &body_len, subject_a, "T-kill");
    assert_int_equal(e2e_raw_open(&raw, &broker, &tax.kp), 0);
    for (i = 1; i <= 300; i++) {
        assert_int_equal(e2e_envelope(&env, &env_len, tax.id, session,
                                      (uint64_t)i, once_now_ms(),
                                      ONCE__KIND__KIND_REQUEST, body,
                                      body_len, &tax.kp), 0);
        assert_int_equal(e2e_raw_send(&raw, env, env_len), 0);
        free(env);
    }
    /* Keep the checkpoint of the last receipt read before the kill. */
    while (answered < 20 && e2e_raw_recv(&raw, 20000, &reply) == 1) {
        r = response_of(reply);
        assert_non_null(r);
        assert_non_null(r->receipt);
        e2e_spit(kept, r->receipt->checkpoint.data,
                 r->receipt->checkpoint.len);
        once__response__free_unpacked(r, NULL);
        once__envelope__free_unpacked(reply, NULL);
        answered++;
    }
    assert_int_equal(answered, 20);
    e2e_kill(&broker);
    e2e_raw_close(&raw);
    free(body);

    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    once_client_close(market_c);
    once_client_close(tax_c);
    once_client_close(bank_c);
    assert_int_equal(e2e_client(&broker, &market, &market_c, &err), 0);
    assert_int_equal(e2e_client(&broker, &tax, &tax_c, &err), 0);
    assert_int_equal(e2e_client(&broker, &bank, &bank_c, &err), 0);
    assert_int_equal(once_client_ping(tax_c, &err), 0);
    snprintf(dir, sizeof(dir), "%s/export-after-kill", broker.dir);
    export_log(dir);
    rc = e2e_run(&out, "'%s' consistency '%s' '%s' --key '%s/broker.pub'",
                 audit, kept, dir, broker.home);
    if (rc != 0)
        fail_msg("consistency: %s", out);
    free(out);
    /* verify checks every stored checkpoint against the one tree. */
    rc = verify_export(&out, dir, "--audit-key '%s/audit.key'",
                       broker.home);
    if (rc != 0)
        fail_msg("verify after the kill: %s", out);
    free(out);
}

/* Restarts the broker with checkpoint_interval_ms set (the last setting
 * of a name in once.conf wins). */
static void restart_with_interval(const char *ms)
{
    once_error err;

    assert_int_equal(e2e_configure(&broker, "checkpoint_interval_ms = %s\n",
                                   ms), 0);
    if (broker.pid > 0)
        assert_int_equal(e2e_stop(&broker), 0);
    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    once_client_close(tax_c);
    assert_int_equal(e2e_client(&broker, &tax, &tax_c, &err), 0);
}

/* A request without a proof; returns its leaf index. */
static uint64_t plain_request(const char *case_id)
{
    once_receipt receipt = { 0 };
    once_record *got = NULL;
    once_error err;
    uint64_t index;

    if (once_client_request_ex(tax_c, LICENCE, subject_a, TAX_PURPOSE,
                               case_id, 0, 0, &got, &receipt, &err) != 0)
        fail_msg("request: %s", err.message);
    requests_about_a++;
    once_record_free(got);
    assert_true(receipt.logged && !receipt.has_proof);
    index = receipt.leaf_index;
    once_receipt_clear(&receipt);
    return index;
}

/* The checkpoint cadence: none for answers without a proof until the
 * interval runs out, one at once for an answer with a proof, one when the
 * broker stops, and one from the idle writer when the interval passes. */
static void test_checkpoint_cadence(void **state)
{
    char dir[PATH_MAX + 32];
    once_receipt receipt = { 0 };
    once_record *got = NULL;
    once_error err;
    uint64_t start, last;
    int i;

    (void)state;
    restart_with_interval("3600000");
    snprintf(dir, sizeof(dir), "%s/export-cadence", broker.dir);
    export_log(dir);
    start = export_size(dir);

    assert_int_equal(plain_request("C-1"), start);
    assert_int_equal(plain_request("C-2"), start + 1);
    export_log(dir);
    assert_int_equal(export_size(dir), start);

    if (once_client_request_ex(tax_c, LICENCE, subject_a, TAX_PURPOSE, "C-3",
                               0, 1, &got, &receipt, &err) != 0)
        fail_msg("request: %s", err.message);
    requests_about_a++;
    once_record_free(got);
    assert_int_equal(receipt.leaf_index, start + 2);
    assert_int_equal(once_receipt_verify(&receipt, broker.broker_pk, origin,
                                         &err), 0);
    once_receipt_clear(&receipt);
    export_log(dir);
    assert_int_equal(export_size(dir), start + 3);

    last = plain_request("C-4");
    assert_int_equal(e2e_stop(&broker), 0);
    export_log(dir);
    assert_int_equal(export_size(dir), last + 1);

    /* The idle writer signs once the interval has passed; the loop only
     * bounds how long the test waits for that. */
    restart_with_interval("50");
    last = plain_request("C-5");
    for (i = 0; i < 600; i++) {
        export_log(dir);
        if (export_size(dir) == last + 1)
            break;
        usleep(50 * 1000);
    }
    assert_int_equal(export_size(dir), last + 1);
}

/* verify --save / --since: a later run takes the old leaves' signatures
 * from the saved state but checks everything else; a changed old envelope
 * or leaf is still found, so is a wrong audit key on old leaves, and a
 * state whose checkpoint does not verify, or an export directory passed as
 * a state, is refused. */
static void test_verify_since(void **state)
{
    char dir[PATH_MAX + 32], saved[PATH_MAX + 32], copy[PATH_MAX + 64];
    char *out;
    once_receipt receipt = { 0 };
    once_record *got = NULL;
    once_error err;
    uint64_t saved_size, size;
    uint8_t *data;
    size_t len;
    int rc;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/export-since", broker.dir);
    snprintf(saved, sizeof(saved), "%s/audit-state", broker.dir);
    export_log(dir);
    saved_size = export_size(dir);
    assert_true(saved_size > 4);
    rc = verify_export(&out, dir, "--save '%s'", saved);
    if (rc != 0 || strstr(out, "state saved") == NULL)
        fail_msg("verify --save: %s", out);
    free(out);

    plain_request("S-1");
    if (once_client_request_ex(tax_c, LICENCE, subject_a, TAX_PURPOSE, "S-2",
                               0, 1, &got, &receipt, &err) != 0)
        fail_msg("request: %s", err.message);
    requests_about_a++;
    once_record_free(got);
    once_receipt_clear(&receipt);
    export_log(dir);
    size = export_size(dir);
    assert_true(size >= saved_size + 2);
    rc = verify_export(&out, dir, "--since '%s' --audit-key '%s/audit.key'",
                       saved, broker.home);
    if (rc != 0 || strstr(out, "checked by an earlier run") == NULL)
        fail_msg("verify --since: %s", out);
    free(out);

    /* A wrong audit key: the old leaves' subject hashes are checked too. */
    snprintf(copy, sizeof(copy), "%s/wrong-audit.key", broker.dir);
    assert_int_equal(e2e_oncectl(&broker, "keygen", copy, NULL), 0);
    rc = verify_export(&out, dir, "--since '%s' --audit-key '%s'", saved,
                       copy);
    if (rc != 1 || strstr(out, "FAIL leaf 0:") == NULL)
        fail_msg("wrong audit key: %s", out);
    free(out);

    /* An old envelope changed: its leaf's digest no longer matches. */
    copy_export(copy, sizeof(copy), dir, "copy-since-evidence");
    flip_in_bundle(copy, "evidence", 4, size, 2, true);
    rc = verify_export(&out, copy, "--since '%s'", saved);
    if (rc != 1 || !fails_all_name(out, "leaf 2:"))
        fail_msg("changed old evidence: %s", out);
    free(out);

    /* An old leaf changed: the saved checkpoint's root is not the tree's,
     * so every signature is checked again. */
    copy_export(copy, sizeof(copy), dir, "copy-since-leaf");
    flip_in_bundle(copy, "tile/entries", 2, size, 1, false);
    rc = verify_export(&out, copy, "--since '%s'", saved);
    if (rc != 1 || strstr(out, "FAIL leaf 1:") == NULL ||
        strstr(out, "checked by an earlier run") != NULL)
        fail_msg("changed old leaf: %s", out);
    free(out);

    /* A saved checkpoint whose signature does not verify. */
    snprintf(copy, sizeof(copy), "%s/checkpoint", saved);
    data = e2e_slurp(copy, &len);
    data[len - 20] = data[len - 20] == 'A' ? 'B' : 'A';
    e2e_spit(copy, data, len);
    free(data);
    rc = verify_export(&out, dir, "--since '%s'", saved);
    if (rc != 1 || strstr(out, "FAIL --since checkpoint") == NULL ||
        strstr(out, "checked by an earlier run") != NULL)
        fail_msg("forged saved checkpoint: %s", out);
    free(out);

    /* An export is not a saved state, though it has both files. */
    rc = verify_export(&out, dir, "--since '%s'", dir);
    if (rc != 1 || strstr(out, "not a state directory") == NULL)
        fail_msg("export as state: %s", out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receipts),
        cmocka_unit_test(test_retry_same_receipt),
        cmocka_unit_test(test_retry_rebuilt_answer),
        cmocka_unit_test(test_export_and_audit),
        cmocka_unit_test(test_kill_during_traffic),
        cmocka_unit_test(test_checkpoint_cadence),
        cmocka_unit_test(test_verify_since),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, setup, teardown);
}
