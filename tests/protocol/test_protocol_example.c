/*
 * test_protocol_example.c - docs/PROTOCOL.md's worked example, recomputed.
 *
 * The protocol document promises that someone can write a compatible client
 * in another language from it alone, and its worked example (keys, a signed
 * request, a signed record with a disclosure, a checkpoint and the ping
 * answer naming its log) is what such a person checks their code against.
 * A wrong byte there would cost them days, so the example is not written
 * by hand: this program computes every value with
 * libonce's own envelope code, protobuf-c and libsodium, and compares it
 * with the value printed in the document, which it reads from
 * $ONCE_SOURCE_ROOT/docs/PROTOCOL.md. Document and code cannot drift apart
 * without this test failing.
 *
 * The document marks each value with a fenced block whose info string is a
 * language and a label, for example
 *
 *     ```hex ex-signature
 *     1f2e...
 *     ```
 *
 * A `hex` block is hex digits; spaces and line breaks are ignored, and a
 * '#' starts a comment that runs to the end of the line, so the signing
 * input can be shown field by field. The `text ex-inputs` block lists the
 * example's inputs as `name: value` lines; they must equal the constants
 * below, so that a reader who changes an input in the document (and not
 * here) is told.
 *
 * Run with --print to get the blocks to paste into the document after a
 * deliberate change of the example.
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "checkpoint.h"
#include "envelope.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "record_internal.h"

/* ---- the example's inputs ---- */

#define EX_SENDER "tax-bureau"
#define EX_SESSION 0x1122334455667788ull
#define EX_SEQ 1ull
#define EX_SENT_AT 1767225600000ull /* 2026-01-01T00:00:00Z */
#define EX_TYPE "business-licence"
#define EX_SUBJECT "91350100M000100Y43"
#define EX_PURPOSE "tax-registration"
#define EX_CASE_ID "CASE-2026-0001"

#define EX_ISSUER "market-supervision"
#define EX_ISSUED_AT 1767225600000ull
#define EX_FIELD1_NAME "name"
#define EX_FIELD1_VALUE "Fuzhou Example Technology Co., Ltd."
#define EX_FIELD2_NAME "registered_capital"
#define EX_FIELD2_VALUE "1000000 CNY"

/* Section 10.8: the broker's log, empty; its key's seed is 0x41..0x60. */
#define EX_LOG_ORIGIN "demo.once.example"

/* Requester seed 0x01..0x20, issuer seed 0x21..0x40; salts 0xa0..0xaf and
 * 0xb0..0xbf. */
static void fill_counting(uint8_t *buf, size_t len, uint8_t first)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(first + i);
}

/* ---- everything the example computes ---- */

typedef struct example {
    once_keypair requester;
    once_keypair issuer;
    uint8_t curve_public[32];
    char curve_public_z85[41];

    uint8_t *request_body;
    size_t request_body_len;
    uint8_t *signing_input;
    size_t signing_input_len;
    uint8_t signature[ONCE_SIGNATURE_BYTES];
    uint8_t *envelope;
    size_t envelope_len;

    uint8_t salt1[ONCE_SALT_BYTES];
    uint8_t salt2[ONCE_SALT_BYTES];
    uint8_t digest1[ONCE_DIGEST_BYTES];
    uint8_t digest2[ONCE_DIGEST_BYTES];
    uint8_t *record_header;
    size_t record_header_len;
    uint8_t record_signature[ONCE_SIGNATURE_BYTES];

    once_keypair log_key;
    uint8_t log_key_id[CHECKPOINT_KEY_ID_BYTES];
    char checkpoint[CHECKPOINT_MAX_NOTE];
    uint8_t *ping_response;
    size_t ping_response_len;
} example;

static example ex;

static uint8_t *pack_request(size_t *len)
{
    Once__Request r = ONCE__REQUEST__INIT;
    uint8_t *buf;

    r.type = (char *)EX_TYPE;
    r.subject = (char *)EX_SUBJECT;
    r.purpose = (char *)EX_PURPOSE;
    r.case_id = (char *)EX_CASE_ID;
    *len = once__request__get_packed_size(&r);
    buf = malloc(*len);
    if (buf != NULL)
        once__request__pack(&r, buf);
    return buf;
}

static void envelope_fields(Once__Envelope *e)
{
    e->version = ENVELOPE_VERSION;
    e->sender = (char *)EX_SENDER;
    e->session = EX_SESSION;
    e->seq = EX_SEQ;
    e->sent_at = EX_SENT_AT;
    e->kind = ONCE__KIND__KIND_REQUEST;
    e->reply_to = 0;
    e->body.data = ex.request_body;
    e->body.len = ex.request_body_len;
}

static uint8_t *pack_record_header(size_t *len)
{
    Once__RecordHeader h = ONCE__RECORD_HEADER__INIT;
    Once__FieldDigest f1 = ONCE__FIELD_DIGEST__INIT;
    Once__FieldDigest f2 = ONCE__FIELD_DIGEST__INIT;
    Once__FieldDigest *fields[2] = {&f1, &f2};
    uint8_t *buf;

    f1.name = (char *)EX_FIELD1_NAME;
    f1.digest.data = ex.digest1;
    f1.digest.len = ONCE_DIGEST_BYTES;
    f2.name = (char *)EX_FIELD2_NAME;
    f2.digest.data = ex.digest2;
    f2.digest.len = ONCE_DIGEST_BYTES;
    h.type = (char *)EX_TYPE;
    h.subject = (char *)EX_SUBJECT;
    h.version = 1;
    h.issuer = (char *)EX_ISSUER;
    h.issued_at = EX_ISSUED_AT;
    h.valid_from = EX_ISSUED_AT;
    h.valid_until = 0;
    h.status = ONCE__RECORD_STATUS__STATUS_VALID;
    h.n_fields = 2;
    h.fields = fields;
    *len = once__record_header__get_packed_size(&h);
    buf = malloc(*len);
    if (buf != NULL)
        once__record_header__pack(&h, buf);
    return buf;
}

/* 10.8: the empty log's checkpoint and the ping answer that names it.
 * The key id is computed here from its definition, not with
 * checkpoint_key_id, so the document's formula is what is checked. */
static int compute_log_example(void)
{
    static const uint8_t separator_and_type[2] = {0x0a, 0x01};
    Once__Response r = ONCE__RESPONSE__INIT;
    crypto_hash_sha256_state st;
    uint8_t seed[32], digest[32];
    checkpoint c;

    fill_counting(seed, sizeof(seed), 0x41);
    if (once_keypair_from_seed(&ex.log_key, seed) < 0)
        return -1;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)EX_LOG_ORIGIN,
                              strlen(EX_LOG_ORIGIN));
    crypto_hash_sha256_update(&st, separator_and_type, 2);
    crypto_hash_sha256_update(&st, ex.log_key.public_key, 32);
    crypto_hash_sha256_final(&st, digest);
    memcpy(ex.log_key_id, digest, CHECKPOINT_KEY_ID_BYTES);
    memset(&c, 0, sizeof(c));
    snprintf(c.origin, sizeof(c.origin), "%s", EX_LOG_ORIGIN);
    c.size = 0;
    crypto_hash_sha256(c.root, NULL, 0); /* RFC 9162: MTH({}) */
    if (checkpoint_sign(&c, EX_LOG_ORIGIN, &ex.log_key, ex.checkpoint,
                        sizeof(ex.checkpoint), NULL) < 0)
        return -1;
    r.log_origin = EX_LOG_ORIGIN;
    r.log_public_key.data = ex.log_key.public_key;
    r.log_public_key.len = 32;
    ex.ping_response_len = once__response__get_packed_size(&r);
    ex.ping_response = malloc(ex.ping_response_len);
    if (ex.ping_response == NULL)
        return -1;
    once__response__pack(&r, ex.ping_response);
    return 0;
}

static int compute_example(void)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t seed[32], curve_secret[32];
    uint8_t *record_input;

    fill_counting(seed, sizeof(seed), 0x01);
    if (once_keypair_from_seed(&ex.requester, seed) < 0)
        return -1;
    fill_counting(seed, sizeof(seed), 0x21);
    if (once_keypair_from_seed(&ex.issuer, seed) < 0)
        return -1;
    if (crypto_sign_ed25519_pk_to_curve25519(ex.curve_public,
                                             ex.requester.public_key) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(curve_secret,
                                             ex.requester.secret_key) != 0)
        return -1;
    /* The derived secret must match the derived public key, or the CURVE
     * handshake fails: check the pair as the broker would see it. */
    {
        uint8_t check[32];

        crypto_scalarmult_base(check, curve_secret);
        sodium_memzero(curve_secret, sizeof(curve_secret));
        if (memcmp(check, ex.curve_public, 32) != 0)
            return -1;
    }
    if (once_curve_public_z85(ex.curve_public_z85,
                              ex.requester.public_key) < 0)
        return -1;

    ex.request_body = pack_request(&ex.request_body_len);
    if (ex.request_body == NULL)
        return -1;
    envelope_fields(&e);
    if (envelope_signing_input(&e, &ex.signing_input,
                               &ex.signing_input_len) < 0)
        return -1;
    if (envelope_sign(&e, &ex.requester, ex.signature) < 0)
        return -1;
    if (envelope_pack(&e, &ex.envelope, &ex.envelope_len) < 0)
        return -1;

    fill_counting(ex.salt1, sizeof(ex.salt1), 0xa0);
    fill_counting(ex.salt2, sizeof(ex.salt2), 0xb0);
    if (record_disclosure_digest(ex.salt1, EX_FIELD1_NAME,
                                 (const uint8_t *)EX_FIELD1_VALUE,
                                 strlen(EX_FIELD1_VALUE), ex.digest1) < 0 ||
        record_disclosure_digest(ex.salt2, EX_FIELD2_NAME,
                                 (const uint8_t *)EX_FIELD2_VALUE,
                                 strlen(EX_FIELD2_VALUE), ex.digest2) < 0)
        return -1;
    ex.record_header = pack_record_header(&ex.record_header_len);
    if (ex.record_header == NULL)
        return -1;
    record_input = malloc(RECORD_DOMAIN_BYTES + ex.record_header_len);
    if (record_input == NULL)
        return -1;
    memcpy(record_input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    memcpy(record_input + RECORD_DOMAIN_BYTES, ex.record_header,
           ex.record_header_len);
    crypto_sign_detached(ex.record_signature, NULL, record_input,
                         RECORD_DOMAIN_BYTES + ex.record_header_len,
                         ex.issuer.secret_key);
    free(record_input);
    return compute_log_example();
}

/* ---- the inputs as the document lists them ---- */

static void format_hex(char *out, const uint8_t *in, size_t len)
{
    once_hex_encode(out, in, len);
}

/* Writes the `name: value` lines of the ex-inputs block into out. */
static void format_inputs(char *out, size_t cap)
{
    uint8_t seed[32];
    char seed_hex[65], issuer_seed_hex[65], salt1_hex[33], salt2_hex[33];

    fill_counting(seed, sizeof(seed), 0x01);
    format_hex(seed_hex, seed, 32);
    fill_counting(seed, sizeof(seed), 0x21);
    format_hex(issuer_seed_hex, seed, 32);
    format_hex(salt1_hex, ex.salt1, 16);
    format_hex(salt2_hex, ex.salt2, 16);
    snprintf(out, cap,
             "requester seed: %s\n"
             "sender: %s\n"
             "session: 0x%016llx\n"
             "seq: %llu\n"
             "sent_at: %llu\n"
             "kind: 3\n"
             "reply_to: 0\n"
             "request type: %s\n"
             "request subject: %s\n"
             "request purpose: %s\n"
             "request case_id: %s\n"
             "request version: 0\n"
             "request want_proof: false\n"
             "issuer seed: %s\n"
             "record type: %s\n"
             "record subject: %s\n"
             "record version: 1\n"
             "record issuer: %s\n"
             "record issued_at: %llu\n"
             "record valid_from: %llu\n"
             "record valid_until: 0\n"
             "record status: 1\n"
             "field 1 salt: %s\n"
             "field 1 name: %s\n"
             "field 1 value: %s\n"
             "field 2 salt: %s\n"
             "field 2 name: %s\n"
             "field 2 value: %s\n",
             seed_hex, EX_SENDER, (unsigned long long)EX_SESSION,
             (unsigned long long)EX_SEQ, (unsigned long long)EX_SENT_AT,
             EX_TYPE, EX_SUBJECT, EX_PURPOSE, EX_CASE_ID, issuer_seed_hex,
             EX_TYPE, EX_SUBJECT, EX_ISSUER,
             (unsigned long long)EX_ISSUED_AT,
             (unsigned long long)EX_ISSUED_AT, salt1_hex, EX_FIELD1_NAME,
             EX_FIELD1_VALUE, salt2_hex, EX_FIELD2_NAME, EX_FIELD2_VALUE);
}

/* ---- reading the document ---- */

#define MAX_BLOCKS 32

typedef struct doc_block {
    char kind[16];  /* "hex" or "text" */
    char label[64];
    char *content;  /* the lines between the fences, malloc'd */
} doc_block;

static doc_block blocks[MAX_BLOCKS];
static size_t n_blocks;
static char doc_path[4096];

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1)) != NULL) {
        if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        } else {
            buf[len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Collects every fenced block whose info string is "hex LABEL" or
 * "text LABEL" with a label starting "ex-". */
static int parse_document(const char *text)
{
    const char *line = text;

    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char info[128], kind[16], label[64];

        /* The info string is read from a copy of this one line, so that a
         * fence with a language only cannot borrow a word from the next. */
        snprintf(info, sizeof(info), "%.*s",
                 (int)(len < sizeof(info) ? len : sizeof(info) - 1), line);
        if (strncmp(info, "```", 3) == 0 &&
            sscanf(info + 3, "%15s %63s", kind, label) == 2 &&
            strncmp(label, "ex-", 3) == 0) {
            const char *body = end ? end + 1 : line + len;
            const char *close = body;
            doc_block *b;

            /* The closing fence is a line that is exactly ``` . */
            for (;;) {
                if (strncmp(close, "```", 3) == 0 &&
                    (close[3] == '\n' || close[3] == '\0'))
                    break;
                close = strchr(close, '\n');
                if (close == NULL)
                    return -1;
                close++;
            }
            if (n_blocks == MAX_BLOCKS)
                return -1;
            b = &blocks[n_blocks++];
            snprintf(b->kind, sizeof(b->kind), "%s", kind);
            snprintf(b->label, sizeof(b->label), "%s", label);
            b->content = strndup(body, (size_t)(close - body));
            if (b->content == NULL)
                return -1;
            line = close + 3;
            if (*line == '\n')
                line++;
            continue;
        }
        line += len;
        if (*line == '\n')
            line++;
    }
    return 0;
}

static const doc_block *find_block(const char *kind, const char *label)
{
    size_t i, found = 0;
    const doc_block *b = NULL;

    for (i = 0; i < n_blocks; i++) {
        if (strcmp(blocks[i].label, label) == 0) {
            b = &blocks[i];
            found++;
        }
    }
    if (found != 1) {
        print_error("%s: expected exactly one ```%s %s block, found %zu\n",
                    doc_path, kind, label, found);
        return NULL;
    }
    if (strcmp(b->kind, kind) != 0) {
        print_error("%s: block %s is ```%s, expected ```%s\n", doc_path,
                    label, b->kind, kind);
        return NULL;
    }
    return b;
}

/* The hex digits of a hex block, lowercase, comments and spaces removed.
 * NULL (with a message) on any other character. */
static char *block_hex(const doc_block *b)
{
    char *out = malloc(strlen(b->content) + 1);
    const char *p = b->content;
    size_t n = 0;

    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        if (*p == '#') {
            while (*p != '\0' && *p != '\n')
                p++;
            continue;
        }
        if (isxdigit((unsigned char)*p)) {
            out[n++] = (char)tolower((unsigned char)*p);
        } else if (!isspace((unsigned char)*p)) {
            print_error("%s: block %s holds '%c', which is not a hex digit\n",
                        doc_path, b->label, *p);
            free(out);
            return NULL;
        }
        p++;
    }
    out[n] = '\0';
    return out;
}

/* Trims trailing spaces of each line; the comparison of text blocks is
 * otherwise exact. */
static char *block_text(const doc_block *b)
{
    char *out = malloc(strlen(b->content) + 1);
    const char *p = b->content;
    size_t n = 0;

    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        if (*p == '\n') {
            while (n > 0 && out[n - 1] == ' ')
                n--;
        }
        out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

static void assert_doc_hex(const char *label, const uint8_t *bytes,
                           size_t len)
{
    const doc_block *b = find_block("hex", label);
    char *want = malloc(2 * len + 1);
    char *got;

    assert_non_null(b);
    assert_non_null(want);
    once_hex_encode(want, bytes, len);
    got = block_hex(b);
    assert_non_null(got);
    if (strcmp(got, want) != 0) {
        print_error("%s: block %s differs from the computed value\n"
                    "  document: %s\n  computed: %s\n",
                    doc_path, label, got, want);
        fail();
    }
    free(got);
    free(want);
}

static void assert_doc_text(const char *label, const char *want)
{
    const doc_block *b = find_block("text", label);
    char *got;

    assert_non_null(b);
    got = block_text(b);
    assert_non_null(got);
    if (strcmp(got, want) != 0) {
        print_error("%s: block %s differs from the computed value\n"
                    "--- document:\n%s--- computed:\n%s", doc_path, label,
                    got, want);
        fail();
    }
    free(got);
}

/* ---- the tests ---- */

static void test_inputs(void **state)
{
    char inputs[4096];

    (void)state;
    format_inputs(inputs, sizeof(inputs));
    assert_doc_text("ex-inputs", inputs);
}

static void test_keys(void **state)
{
    char z85[64];

    (void)state;
    assert_doc_hex("ex-public-key", ex.requester.public_key, 32);
    assert_doc_hex("ex-curve-public-key", ex.curve_public, 32);
    snprintf(z85, sizeof(z85), "%s\n", ex.curve_public_z85);
    assert_doc_text("ex-curve-public-z85", z85);
    assert_doc_hex("ex-issuer-public-key", ex.issuer.public_key, 32);
}

static void test_request_body(void **state)
{
    Once__Request *r;

    (void)state;
    assert_doc_hex("ex-request-body", ex.request_body, ex.request_body_len);
    r = once__request__unpack(NULL, ex.request_body_len, ex.request_body);
    assert_non_null(r);
    assert_string_equal(r->type, EX_TYPE);
    assert_string_equal(r->subject, EX_SUBJECT);
    assert_int_equal(once_uscc_validate(r->subject, NULL), 0);
    once__request__free_unpacked(r, NULL);
}

static void test_signing_input(void **state)
{
    (void)state;
    assert_doc_hex("ex-signing-input", ex.signing_input,
                   ex.signing_input_len);
}

/* The signature is checked twice: against the document's bytes, and by
 * verifying it over the signing input the document prints, so the example
 * shows a signature that really verifies and not merely one that matches. */
static void test_signature(void **state)
{
    const doc_block *b;
    uint8_t pk[32], sig[64], *input;
    char *hex;
    size_t input_len;

    (void)state;
    assert_doc_hex("ex-signature", ex.signature, sizeof(ex.signature));

    b = find_block("hex", "ex-signing-input");
    assert_non_null(b);
    hex = block_hex(b);
    assert_non_null(hex);
    input_len = strlen(hex) / 2;
    input = malloc(input_len);
    assert_non_null(input);
    assert_int_equal(once_hex_decode(input, input_len, hex), 0);
    free(hex);
    hex = block_hex(find_block("hex", "ex-public-key"));
    assert_int_equal(once_hex_decode(pk, 32, hex), 0);
    free(hex);
    hex = block_hex(find_block("hex", "ex-signature"));
    assert_int_equal(once_hex_decode(sig, 64, hex), 0);
    free(hex);
    assert_int_equal(crypto_sign_verify_detached(sig, input, input_len, pk),
                     0);
    input[input_len - 1] ^= 1;
    assert_int_not_equal(crypto_sign_verify_detached(sig, input, input_len,
                                                     pk), 0);
    free(input);
}

/* The envelope from the document decodes to the example's fields and
 * verifies under the requester's key with the broker's own check. */
static void test_envelope(void **state)
{
    Once__Envelope *e;
    char *hex;
    uint8_t *bytes;
    size_t len;

    (void)state;
    assert_doc_hex("ex-envelope", ex.envelope, ex.envelope_len);
    hex = block_hex(find_block("hex", "ex-envelope"));
    assert_non_null(hex);
    len = strlen(hex) / 2;
    bytes = malloc(len);
    assert_non_null(bytes);
    assert_int_equal(once_hex_decode(bytes, len, hex), 0);
    free(hex);
    e = envelope_unpack(bytes, len);
    assert_non_null(e);
    assert_int_equal(e->version, 1);
    assert_string_equal(e->sender, EX_SENDER);
    assert_true(e->session == EX_SESSION);
    assert_true(e->seq == EX_SEQ);
    assert_true(e->sent_at == EX_SENT_AT);
    assert_int_equal(e->kind, ONCE__KIND__KIND_REQUEST);
    assert_true(e->reply_to == 0);
    assert_int_equal(e->body.len, ex.request_body_len);
    assert_memory_equal(e->body.data, ex.request_body, ex.request_body_len);
    assert_int_equal(envelope_verify(e, ex.requester.public_key), 0);
    assert_int_equal(envelope_verify(e, ex.issuer.public_key),
                     -ONCE_ERR_BAD_SIGNATURE);
    once__envelope__free_unpacked(e, NULL);
    free(bytes);
}

static void test_record(void **state)
{
    (void)state;
    assert_doc_hex("ex-digest-1", ex.digest1, sizeof(ex.digest1));
    assert_doc_hex("ex-digest-2", ex.digest2, sizeof(ex.digest2));
    assert_doc_hex("ex-record-header", ex.record_header,
                   ex.record_header_len);
    assert_doc_hex("ex-record-signature", ex.record_signature,
                   sizeof(ex.record_signature));
}

/* What a requester does with an answer that discloses field 1 only: the
 * library's own verification accepts it, and rejects it when the value is
 * changed. */
static void test_record_verifies_with_one_disclosure(void **state)
{
    Once__SignedRecord rec = ONCE__SIGNED_RECORD__INIT;
    Once__Disclosure d = ONCE__DISCLOSURE__INIT;
    Once__Disclosure *ds[1] = {&d};
    once_record *r = NULL;
    const uint8_t *value;
    size_t value_len;
    char tampered[] = EX_FIELD1_VALUE;

    (void)state;
    rec.header.data = ex.record_header;
    rec.header.len = ex.record_header_len;
    rec.signature.data = ex.record_signature;
    rec.signature.len = sizeof(ex.record_signature);
    d.salt.data = ex.salt1;
    d.salt.len = sizeof(ex.salt1);
    d.name = (char *)EX_FIELD1_NAME;
    d.value.data = (uint8_t *)EX_FIELD1_VALUE;
    d.value.len = strlen(EX_FIELD1_VALUE);
    assert_int_equal(record_from_parts(&r, &rec, ds, 1, NULL), 0);
    assert_int_equal(once_record_verify(r, ex.issuer.public_key, NULL), 0);
    assert_int_equal(once_record_field_count(r), 2);
    assert_int_equal(once_record_disclosure_count(r), 1);
    assert_int_equal(once_record_field_value(r, EX_FIELD1_NAME, &value,
                                             &value_len), 0);
    assert_int_equal(value_len, strlen(EX_FIELD1_VALUE));
    assert_int_equal(once_record_field_value(r, EX_FIELD2_NAME, &value,
                                             &value_len),
                     -ONCE_ERR_NOT_FOUND);
    assert_int_equal(once_record_verify(r, ex.requester.public_key, NULL),
                     -ONCE_ERR_BAD_SIGNATURE);
    once_record_free(r);

    tampered[0] = 'X';
    d.value.data = (uint8_t *)tampered;
    assert_int_equal(record_from_parts(&r, &rec, ds, 1, NULL), 0);
    assert_int_equal(once_record_verify(r, ex.issuer.public_key, NULL),
                     -ONCE_ERR_INVALID_RECORD);
    once_record_free(r);
}

/* ---- --print: the blocks for the document ---- */

static void print_hex_lines(const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i += 32) {
        size_t n = len - i < 32 ? len - i : 32;
        char hex[2 * 32 + 1];

        once_hex_encode(hex, p + i, n);
        printf("%s\n", hex);
    }
}

/* One item on one line with its comment, or, when longer than fits, the
 * comment on a line of its own above the bytes. */
static void print_item(const uint8_t *p, size_t len, const char *comment)
{
    char hex[2 * 17 + 1];

    if (len <= 17) {
        once_hex_encode(hex, p, len);
        printf("%-36s# %s\n", hex, comment);
    } else {
        printf("# %s\n", comment);
        print_hex_lines(p, len);
    }
}

static void print_block(const char *label, const uint8_t *p, size_t len)
{
    printf("```hex %s\n", label);
    print_hex_lines(p, len);
    printf("```\n\n");
}

static size_t varint_at(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    size_t n = 0;

    *v = 0;
    while (p + n < end && n < 10) {
        *v |= (uint64_t)(p[n] & 0x7f) << (7 * n);
        if ((p[n++] & 0x80) == 0)
            return n;
    }
    return 0;
}

/* A serialized message field by field: the key and value bytes of each
 * field, with the field's name from the .proto. Only the wire types the
 * example uses (varint, length-delimited) occur. */
static void print_fields(const ProtobufCMessageDescriptor *desc,
                         const char *prefix, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;

    while (p < end) {
        const ProtobufCFieldDescriptor *f;
        uint64_t key, value;
        size_t key_len = varint_at(p, end, &key), value_len;
        char comment[160];

        assert_true(key_len > 0);
        f = protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
        assert_non_null(f);
        value_len = varint_at(p + key_len, end, &value);
        assert_true(value_len > 0);
        if ((key & 7) == 0) {
            snprintf(comment, sizeof(comment),
                     "%sfield %u %s = %llu (varint)", prefix, f->id, f->name,
                     (unsigned long long)value);
            print_item(p, key_len + value_len, comment);
            p += key_len + value_len;
        } else {
            const uint8_t *data = p + key_len + value_len;
            char text[64] = "";

            assert_int_equal(key & 7, 2);
            if (f->type == PROTOBUF_C_TYPE_STRING && value < 40)
                snprintf(text, sizeof(text), " \"%.*s\"", (int)value,
                         (const char *)data);
            snprintf(comment, sizeof(comment),
                     "%sfield %u %s, %llu bytes follow%s", prefix, f->id,
                     f->name, (unsigned long long)value, text);
            print_item(p, key_len + value_len, comment);
            if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                print_fields(f->descriptor, "  ", data, (size_t)value);
            else
                print_hex_lines(data, (size_t)value);
            p = data + value;
        }
    }
}

static void print_message_block(const char *label,
                                const ProtobufCMessageDescriptor *desc,
                                const uint8_t *p, size_t len)
{
    printf("```hex %s\n", label);
    print_fields(desc, "", p, len);
    printf("```\n\n");
}

/* The signing input field by field, as the document shows it. */
static void print_signing_input(void)
{
    const uint8_t *p = ex.signing_input;
    size_t sender_len = strlen(EX_SENDER);
    char comment[128];

    printf("```hex ex-signing-input\n");
    print_item(p, 17, "\"ONCE-ENVELOPE-V1\" 0x00 (17 bytes)");
    p += 17;
    print_item(p, 4, "u32 version = 1");
    p += 4;
    snprintf(comment, sizeof(comment), "u32 len(sender) = %zu", sender_len);
    print_item(p, 4, comment);
    p += 4;
    snprintf(comment, sizeof(comment), "sender \"%s\"", EX_SENDER);
    print_item(p, sender_len, comment);
    p += sender_len;
    print_item(p, 8, "u64 session");
    p += 8;
    print_item(p, 8, "u64 seq = 1");
    p += 8;
    print_item(p, 8, "u64 sent_at = 1767225600000");
    p += 8;
    print_item(p, 4, "u32 kind = 3 (KIND_REQUEST)");
    p += 4;
    print_item(p, 8, "u64 reply_to = 0");
    p += 8;
    snprintf(comment, sizeof(comment), "u32 len(body) = %zu",
             ex.request_body_len);
    print_item(p, 4, comment);
    p += 4;
    print_item(p, ex.request_body_len, "body: the Request bytes as sent");
    printf("```\n\n");
}

static void print_document_blocks(void)
{
    char inputs[4096];

    format_inputs(inputs, sizeof(inputs));
    printf("```text ex-inputs\n%s```\n\n", inputs);
    print_block("ex-public-key", ex.requester.public_key, 32);
    print_block("ex-curve-public-key", ex.curve_public, 32);
    printf("```text ex-curve-public-z85\n%s\n```\n\n", ex.curve_public_z85);
    print_message_block("ex-request-body", &once__request__descriptor,
                        ex.request_body, ex.request_body_len);
    print_signing_input();
    print_block("ex-signature", ex.signature, sizeof(ex.signature));
    print_message_block("ex-envelope", &once__envelope__descriptor,
                        ex.envelope, ex.envelope_len);
    print_block("ex-issuer-public-key", ex.issuer.public_key, 32);
    print_block("ex-digest-1", ex.digest1, sizeof(ex.digest1));
    print_block("ex-digest-2", ex.digest2, sizeof(ex.digest2));
    print_message_block("ex-record-header", &once__record_header__descriptor,
                        ex.record_header, ex.record_header_len);
    print_block("ex-record-signature", ex.record_signature,
                sizeof(ex.record_signature));
    print_block("ex-log-public-key", ex.log_key.public_key, 32);
    print_block("ex-log-key-id", ex.log_key_id, sizeof(ex.log_key_id));
    printf("```text ex-checkpoint\n%s```\n\n", ex.checkpoint);
    print_message_block("ex-ping-response", &once__response__descriptor,
                        ex.ping_response, ex.ping_response_len);
}

/* 10.8: the key id and the note as the document prints them, and the
 * note's signature checked by hand over its first three lines. */
static void test_checkpoint(void **state)
{
    const char *body_end;
    uint8_t blob[CHECKPOINT_KEY_ID_BYTES + ONCE_SIGNATURE_BYTES];
    const char *sig_b64;
    size_t blob_len;
    checkpoint c;

    (void)state;
    assert_doc_hex("ex-log-public-key", ex.log_key.public_key, 32);
    assert_doc_hex("ex-log-key-id", ex.log_key_id, sizeof(ex.log_key_id));
    assert_doc_text("ex-checkpoint", ex.checkpoint);
    assert_doc_hex("ex-ping-response", ex.ping_response,
                   ex.ping_response_len);
    body_end = strstr(ex.checkpoint, "\n\n");
    assert_non_null(body_end);
    sig_b64 = strrchr(ex.checkpoint, ' ');
    assert_non_null(sig_b64);
    assert_int_equal(sodium_base642bin(blob, sizeof(blob), sig_b64 + 1,
                                       strlen(sig_b64 + 1) - 1, NULL,
                                       &blob_len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(blob_len, sizeof(blob));
    assert_memory_equal(blob, ex.log_key_id, CHECKPOINT_KEY_ID_BYTES);
    assert_int_equal(crypto_sign_verify_detached(
                         blob + CHECKPOINT_KEY_ID_BYTES,
                         (const uint8_t *)ex.checkpoint,
                         (size_t)(body_end + 1 - ex.checkpoint),
                         ex.log_key.public_key), 0);
    assert_int_equal(checkpoint_verify(ex.checkpoint, strlen(ex.checkpoint),
                                       EX_LOG_ORIGIN, ex.log_key.public_key,
                                       &c, NULL), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_signing_input),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_record_verifies_with_one_disclosure),
        cmocka_unit_test(test_checkpoint),
    };
    const char *root = getenv("ONCE_SOURCE_ROOT");
    char *text;
    int rc;

    if (once_init() < 0 || compute_example() < 0) {
        fprintf(stderr, "cannot compute the example\n");
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "--print") == 0) {
        print_document_blocks();
        return 0;
    }
    if (root == NULL || root[0] == '\0') {
        fprintf(stderr, "ONCE_SOURCE_ROOT is not set; run through meson "
                        "test\n");
        return 1;
    }
    snprintf(doc_path, sizeof(doc_path), "%s/docs/PROTOCOL.md", root);
    text = read_file(doc_path);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s: %s\n", doc_path, strerror(errno));
        return 1;
    }
    if (parse_document(text) < 0) {
        fprintf(stderr, "%s: an example block is not closed, or there are "
                        "more than %d\n", doc_path, MAX_BLOCKS);
        free(text);
        return 1;
    }
    free(text);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (size_t i = 0; i < n_blocks; i++)
        free(blocks[i].content);
    free(ex.request_body);
    free(ex.signing_input);
    free(ex.envelope);
    free(ex.record_header);
    free(ex.ping_response);
    once_keypair_wipe(&ex.log_key);
    once_keypair_wipe(&ex.requester);
    once_keypair_wipe(&ex.issuer);
    return rc;
}
