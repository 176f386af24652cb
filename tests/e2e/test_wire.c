/*
 * test_wire.c - end to end with raw CURVE DEALER sockets: the envelopes
 * libonce's client never sends. Bad signatures, a sender that is not the
 * connection's department, replays and retries, clocks out of the window,
 * oversize and malformed frames, unknown keys, tampered records, and
 * retries across a broker restart.
 *
 * Each check asserts the broker's answer (the Error code and that it
 * answers the right seq), and the broker must go on serving afterwards:
 * the last test stops it with SIGTERM and expects exit status 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zmq.h>

#include "harness.h"

#define LICENCE "business-licence"
#define PURPOSE "tax-registration"
/* Generous: a sanitizer build on a loaded machine is slow. Tests never
 * assert how long anything took. */
#define ANSWER_TIMEOUT_MS 20000

static e2e_broker broker;
static e2e_dept market, tax, stranger;
static e2e_raw market_raw;
static uint64_t market_session;
static uint64_t market_seq;
static char licensed[19]; /* a subject with a published licence */

/* Sends bytes and returns the answer, which must arrive. */
static Once__Envelope *call(e2e_raw *r, const uint8_t *bytes, size_t len)
{
    Once__Envelope *reply = NULL;

    assert_int_equal(e2e_raw_send(r, bytes, len), 0);
    if (e2e_raw_recv(r, ANSWER_TIMEOUT_MS, &reply) != 1) {
        e2e_dump_log(&broker);
        fail_msg("no answer from the broker");
    }
    return reply;
}

/* Sends an envelope and returns the answer's code (0 for a Response),
 * checking it answers seq. */
static int call_code(e2e_raw *r, const uint8_t *bytes, size_t len,
                     uint64_t seq)
{
    Once__Envelope *reply = call(r, bytes, len);
    int code = e2e_reply_code(reply);

    assert_int_equal(reply->reply_to, seq);
    once__envelope__free_unpacked(reply, NULL);
    return code;
}

/* A signed envelope from market supervision on its session. */
static int market_call(uint64_t seq, uint64_t sent_at, int kind,
                       const uint8_t *body, size_t body_len)
{
    uint8_t *env;
    size_t len;
    int code;

    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, seq,
                                  sent_at, kind, body, body_len, &market.kp),
                     0);
    code = call_code(&market_raw, env, len, seq);
    free(env);
    return code;
}

static int ping(uint64_t seq)
{
    return market_call(seq, once_now_ms(), ONCE__KIND__KIND_PING, NULL, 0);
}

static uint8_t *licence_publish(const char *subject, uint64_t version,
                                size_t *len)
{
    once_record *r = NULL;
    once_error err;
    uint8_t *body;

    assert_int_equal(once_record_new(&r, LICENCE, subject, version, market.id,
                                     0, 0, &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "Wire Co.", &err), 0);
    assert_int_equal(once_record_add_text(r, "address", "3 Wire Road", &err),
                     0);
    assert_int_equal(once_record_sign(r, &market.kp, &err), 0);
    assert_int_equal(once_record_serialize(r, &body, len, &err), 0);
    once_record_free(r);
    return body;
}

static int setup(void **state)
{
    uint8_t *body;
    size_t len;

    (void)state;
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_keys(&broker, &stranger, "stranger") != 0 ||
        e2e_oncectl(&broker, "type", "add", LICENCE, "--issuer", market.id,
                    "--subject", "enterprise", "--fields", "name,address",
                    NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", tax.id, "--type",
                    LICENCE, "--purpose", PURPOSE, "--fields", "name", NULL) !=
            0 ||
        e2e_start(&broker, &market, "--workers", "4", NULL) != 0 ||
        e2e_raw_open(&market_raw, &broker, &market.kp) != 0)
        return -1;
    market_session = e2e_session();
    market_seq = 1;
    e2e_uscc(licensed, 7700001);
    body = licence_publish(licensed, 1, &len);
    if (market_call(market_seq++, once_now_ms(), ONCE__KIND__KIND_PUBLISH,
                    body, len) != 0)
        return -1;
    free(body);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_raw_close(&market_raw);
    e2e_cleanup(&broker);
    return 0;
}

static void test_ping_reply_envelope(void **state)
{
    uint64_t seq = market_seq++;
    Once__Envelope *reply;
    uint8_t *env;
    size_t len;

    (void)state;
    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &market.kp), 0);
    reply = call(&market_raw, env, len);
    free(env);
    assert_int_equal(reply->version, 1);
    assert_string_equal(reply->sender, "e2e-broker");
    assert_int_equal(reply->kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(reply->reply_to, seq);
    assert_int_equal(reply->signature.len, 0); /* PROTOCOL.md 2.2 */
    assert_true(reply->session != 0);
    /* PROTOCOL.md 4.4: the answer names the log, whose origin is the
     * broker's name unless once.conf sets log_origin. */
    {
        Once__Response *r = once__response__unpack(NULL, reply->body.len,
                                                   reply->body.data);

        assert_non_null(r);
        assert_string_equal(r->log_origin, "e2e-broker");
        assert_int_equal(r->log_public_key.len, ONCE_PUBLIC_KEY_BYTES);
        assert_memory_equal(r->log_public_key.data, broker.broker_pk,
                            ONCE_PUBLIC_KEY_BYTES);
        assert_null(r->record);
        assert_int_equal(r->n_disclosures, 0);
        once__response__free_unpacked(r, NULL);
    }
    once__envelope__free_unpacked(reply, NULL);
}

/* A client learns the log's origin and key from a ping and verifies a
 * receipt with nothing else (PROTOCOL.md 4.7). */
static void test_receipt_verifies_with_ping_info(void **state)
{
    once_receipt receipt = {0};
    once_log_info log;
    once_client *c = NULL;
    once_record *r = NULL;
    once_error err;

    (void)state;
    assert_int_equal(e2e_client(&broker, &tax, &c, &err), 0);
    assert_int_equal(once_client_ping_ex(c, &log, &err), 0);
    assert_string_equal(log.origin, "e2e-broker");
    assert_memory_equal(log.public_key, broker.broker_pk,
                        ONCE_PUBLIC_KEY_BYTES);
    assert_int_equal(once_client_request_ex(c, LICENCE, licensed, PURPOSE,
                                            "R-1", 0, 1, &r, &receipt, &err),
                     0);
    assert_true(receipt.has_proof);
    assert_int_equal(once_receipt_verify(&receipt, log.public_key,
                                         log.origin, &err), 0);
    assert_int_not_equal(once_receipt_verify(&receipt, log.public_key,
                                             "another-log", &err), 0);
    once_receipt_clear(&receipt);
    once_record_free(r);
    once_client_close(c);
}

static void test_bad_signature(void **state)
{
    uint64_t seq = market_seq++;
    uint8_t *env;
    size_t len;

    (void)state;
    /* Sender market supervision, signed with tax's key. */
    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &tax.kp), 0);
    assert_int_equal(call_code(&market_raw, env, len, seq),
                     ONCE_ERR_BAD_SIGNATURE);
    free(env);
    /* A forged envelope does not use up its seq. */
    assert_int_equal(ping(seq), 0);
}

static void test_sender_mismatch(void **state)
{
    uint64_t seq = market_seq++;
    uint8_t *env;
    size_t len;

    (void)state;
    /* Correctly signed by tax, but sent on market supervision's
     * connection. */
    assert_int_equal(e2e_envelope(&env, &len, tax.id, market_session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &tax.kp), 0);
    assert_int_equal(call_code(&market_raw, env, len, seq),
                     ONCE_ERR_SENDER_MISMATCH);
    free(env);
}

/* The same bytes again are a retry: the same answer, not a refusal. */
static void test_retry_gets_same_answer(void **state)
{
    uint64_t seq = market_seq++;
    Once__Envelope *first, *second;
    uint8_t *body, *env;
    size_t body_len, len;

    (void)state;
    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, licensed,
                                      PURPOSE, "T-1", 0), 0);
    assert_int_equal(e2e_envelope(&env, &len, tax.id, e2e_session(), seq,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, body_len, &tax.kp), 0);
    {
        e2e_raw tax_raw;

        assert_int_equal(e2e_raw_open(&tax_raw, &broker, &tax.kp), 0);
        first = call(&tax_raw, env, len);
        second = call(&tax_raw, env, len);
        e2e_raw_close(&tax_raw);
    }
    assert_int_equal(first->kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(second->kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(second->reply_to, seq);
    assert_int_equal(first->body.len, second->body.len);
    assert_memory_equal(first->body.data, second->body.data,
                        first->body.len);
    once__envelope__free_unpacked(first, NULL);
    once__envelope__free_unpacked(second, NULL);
    free(env);
    free(body);
}

static void test_replay_with_other_bytes(void **state)
{
    uint64_t seq = market_seq++;
    uint64_t now = once_now_ms();

    (void)state;
    assert_int_equal(market_call(seq, now, ONCE__KIND__KIND_PING, NULL, 0), 0);
    /* Same session and seq, different sent_at: a new envelope reusing a
     * seq is a replay. */
    assert_int_equal(market_call(seq, now + 1, ONCE__KIND__KIND_PING, NULL, 0),
                     ONCE_ERR_REPLAY);
}

static void test_window(void **state)
{
    uint64_t base = market_seq + 5000;

    (void)state;
    /* Out of order inside the window is fine (pipelined envelopes verified
     * by different workers). */
    assert_int_equal(ping(base + 50), 0);
    assert_int_equal(ping(base + 40), 0);
    assert_int_equal(ping(base + 45), 0);
    assert_int_equal(ping(base + 2000), 0);
    /* Never used, but more than the window below the highest seen. */
    assert_int_equal(ping(base + 60), ONCE_ERR_REPLAY);
    market_seq = base + 2001;
}

static void test_clock_skew(void **state)
{
    uint64_t seq = market_seq++;
    uint64_t now = once_now_ms();

    (void)state;
    assert_int_equal(market_call(seq, now - 600000, ONCE__KIND__KIND_PING,
                                 NULL, 0),
                     ONCE_ERR_CLOCK_SKEW);
    assert_int_equal(market_call(seq, now + 600000, ONCE__KIND__KIND_PING,
                                 NULL, 0),
                     ONCE_ERR_CLOCK_SKEW);
    /* Refused envelopes do not use up the seq. */
    assert_int_equal(ping(seq), 0);
}

static void test_oversize_answered(void **state)
{
    uint64_t seq = market_seq++;
    /* The largest body a signature is defined for; with the rest of the
     * envelope the frame is over the limit. */
    size_t big = ONCE_MAX_MESSAGE;
    uint8_t *body = calloc(1, big);

    (void)state;
    assert_non_null(body);
    assert_int_equal(market_call(seq, once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                 body, big),
                     ONCE_ERR_TOO_LARGE);
    free(body);
}

/* Far over the limit, libzmq drops the frame and the connection; the
 * broker serves on. */
static void test_far_oversize_dropped(void **state)
{
    size_t huge = 6 * ONCE_MAX_MESSAGE;
    uint8_t *frame = calloc(1, huge);
    e2e_raw r;

    (void)state;
    assert_non_null(frame);
    assert_int_equal(e2e_raw_open(&r, &broker, &market.kp), 0);
    assert_int_equal(e2e_raw_wait_event(&r, ZMQ_EVENT_HANDSHAKE_SUCCEEDED,
                                        ANSWER_TIMEOUT_MS),
                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(e2e_raw_send(&r, frame, huge), 0);
    assert_int_equal(e2e_raw_wait_event(&r, ZMQ_EVENT_DISCONNECTED,
                                        ANSWER_TIMEOUT_MS),
                     ZMQ_EVENT_DISCONNECTED);
    e2e_raw_close(&r);
    free(frame);
    assert_int_equal(ping(market_seq++), 0);
}

/* PROTOCOL.md 8: libzmq takes CURVE frames of up to 5 MiB, and each
 * message frame carries 33 bytes of CURVE framing (the MESSAGE command
 * name, the nonce, the MAC and a flags byte). */
#define LARGEST_FRAME (5 * ONCE_MAX_MESSAGE - 33)

/* A request envelope from market supervision of exactly size bytes (over
 * 1 MiB), its body filling it. Not signed: a signature is only defined for
 * bodies up to 1 MiB, and the size is checked before the signature. */
static uint8_t *envelope_of_size(size_t size, uint64_t seq)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    static uint8_t signature[ONCE_SIGNATURE_BYTES];
    uint8_t *out, *body;

    e.version = 1;
    e.sender = market.id;
    e.session = market_session;
    e.seq = seq;
    e.sent_at = once_now_ms();
    e.kind = ONCE__KIND__KIND_REQUEST;
    e.signature.data = signature;
    e.signature.len = sizeof(signature);
    e.body.len = size - 256;
    /* The body's length prefix is 4 bytes whatever its exact length. */
    e.body.len += size - once__envelope__get_packed_size(&e);
    assert_int_equal(once__envelope__get_packed_size(&e), size);
    body = malloc(e.body.len);
    out = malloc(size);
    assert_non_null(body);
    assert_non_null(out);
    memset(body, 0x5a, e.body.len);
    e.body.data = body;
    assert_int_equal(once__envelope__pack(&e, out), size);
    free(body);
    return out;
}

/* The largest frame libzmq delivers is answered TOO_LARGE, to its seq;
 * one byte more and libzmq drops it with the connection, unanswered. */
static void test_frame_limit(void **state)
{
    uint64_t seq = market_seq++;
    uint8_t *env = envelope_of_size(LARGEST_FRAME, seq);
    e2e_raw r;

    (void)state;
    assert_int_equal(call_code(&market_raw, env, LARGEST_FRAME, seq),
                     ONCE_ERR_TOO_LARGE);
    free(env);
    env = envelope_of_size(LARGEST_FRAME + 1, market_seq++);
    assert_int_equal(e2e_raw_open(&r, &broker, &market.kp), 0);
    assert_int_equal(e2e_raw_wait_event(&r, ZMQ_EVENT_HANDSHAKE_SUCCEEDED,
                                        ANSWER_TIMEOUT_MS),
                     ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(e2e_raw_send(&r, env, LARGEST_FRAME + 1), 0);
    assert_int_equal(e2e_raw_wait_event(&r, ZMQ_EVENT_DISCONNECTED,
                                        ANSWER_TIMEOUT_MS),
                     ZMQ_EVENT_DISCONNECTED);
    e2e_raw_close(&r);
    free(env);
    assert_int_equal(ping(market_seq++), 0);
}

static void test_malformed(void **state)
{
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x42 };
    uint64_t seq = market_seq++;
    static const uint8_t not_a_request[] = { 0x0a, 0x05, 'a' };

    (void)state;
    /* Not an envelope at all: answered MALFORMED, reply_to 0. */
    assert_int_equal(call_code(&market_raw, garbage, sizeof(garbage), 0),
                     ONCE_ERR_MALFORMED);
    /* A signed envelope whose body is not a Request. */
    assert_int_equal(market_call(seq, once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                 not_a_request, sizeof(not_a_request)),
                     ONCE_ERR_MALFORMED);
    /* A ping has no body. */
    seq = market_seq++;
    assert_int_equal(market_call(seq, once_now_ms(), ONCE__KIND__KIND_PING,
                                 not_a_request, sizeof(not_a_request)),
                     ONCE_ERR_MALFORMED);
}

static void test_two_frames(void **state)
{
    uint64_t seq = market_seq++;
    Once__Envelope *reply = NULL;
    uint8_t *env;
    size_t len;

    (void)state;
    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &market.kp), 0);
    assert_int_equal(zmq_send(market_raw.sock, env, len, ZMQ_SNDMORE),
                     (int)len);
    assert_int_equal(zmq_send(market_raw.sock, env, len, 0), (int)len);
    assert_int_equal(e2e_raw_recv(&market_raw, ANSWER_TIMEOUT_MS, &reply), 1);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_MALFORMED);
    once__envelope__free_unpacked(reply, NULL);
    free(env);
}

static void test_session_zero(void **state)
{
    uint8_t *env;
    size_t len;

    (void)state;
    assert_int_equal(e2e_envelope(&env, &len, market.id, 0, 1, once_now_ms(),
                                  ONCE__KIND__KIND_PING, NULL, 0, &market.kp),
                     0);
    assert_int_equal(call_code(&market_raw, env, len, 1), ONCE_ERR_MALFORMED);
    free(env);
}

static void test_unsupported(void **state)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES], *env;
    uint64_t seq = market_seq++;
    size_t len;

    (void)state;
    e.version = 2;
    e.sender = market.id;
    e.session = market_session;
    e.seq = seq;
    e.sent_at = once_now_ms();
    e.kind = ONCE__KIND__KIND_PING;
    assert_int_equal(envelope_sign(&e, &market.kp, sig), 0);
    assert_int_equal(envelope_pack(&e, &env, &len), 0);
    assert_int_equal(call_code(&market_raw, env, len, seq),
                     ONCE_ERR_UNSUPPORTED);
    free(env);
    /* Departments do not send answers. */
    seq = market_seq++;
    assert_int_equal(market_call(seq, once_now_ms(), ONCE__KIND__KIND_RESPONSE,
                                 NULL, 0),
                     ONCE_ERR_UNSUPPORTED);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* protobuf-c would read "market-supervision\0x" as "market-supervision";
 * the broker refuses strings with a NUL instead. */
static void test_nul_in_sender(void **state)
{
    static const char sender[] = "market-supervision\0x";
    uint8_t frame[256], *p = frame;
    uint64_t seq = market_seq++;

    (void)state;
    *p++ = 0x08; /* version */
    *p++ = 1;
    *p++ = 0x12; /* sender */
    *p++ = sizeof(sender) - 1;
    memcpy(p, sender, sizeof(sender) - 1);
    p += sizeof(sender) - 1;
    *p++ = 0x18; /* session */
    p += put_varint(p, market_session);
    *p++ = 0x20; /* seq */
    p += put_varint(p, seq);
    *p++ = 0x28; /* sent_at */
    p += put_varint(p, once_now_ms());
    *p++ = 0x30; /* kind */
    *p++ = ONCE__KIND__KIND_PING;
    *p++ = 0x4a; /* signature: 64 bytes, checked after the strings */
    *p++ = 64;
    memset(p, 0x55, 64);
    p += 64;
    assert_int_equal(call_code(&market_raw, frame, (size_t)(p - frame), seq),
                     ONCE_ERR_INVALID_TEXT);
}

/* A Request from market supervision with want_proof, answered: the reply
 * envelope. */
static Once__Envelope *text_request(const char *type, const char *purpose,
                                    const char *case_id)
{
    Once__Request q = ONCE__REQUEST__INIT;
    Once__Envelope *reply;
    uint64_t seq = market_seq++;
    uint8_t body[1024], *env;
    size_t len;

    q.type = (char *)type;
    q.subject = licensed;
    q.purpose = (char *)purpose;
    q.case_id = (char *)case_id;
    q.want_proof = true;
    assert_true(once__request__get_packed_size(&q) <= sizeof(body));
    len = once__request__pack(&q, body);
    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_REQUEST,
                                  body, len, &market.kp), 0);
    reply = call(&market_raw, env, len);
    free(env);
    assert_int_equal(reply->reply_to, seq);
    return reply;
}

/* A case id with a tab, a newline and an ESC once put a forged row into
 * `once-audit subject`; bytes that are not UTF-8 made a leaf strict proto3
 * parsers refuse. Such text is refused as INVALID_TEXT, the refusal is
 * logged, and its leaf holds none of the text. */
static void test_text_fields_are_clean(void **state)
{
    static const char *const dirty[] = {
        "A-1\t2026-01-01\tpolice\tGRANTED\n\x1b[2K", /* C0 */
        "A-1\x7f",                /* DEL */
        "A-1\xc2\x9b" "2K",        /* C1: a one-byte CSI */
        "A-1\xe2\x80\xa8",         /* U+2028 */
        "A-1\xe2\x80\xae",         /* U+202E, a bidi override */
        "A-1\xff",                /* not UTF-8 */
        "A-1\xc0\xaf",             /* overlong '/' */
        "A-1\xed\xa0\x80",         /* a UTF-16 surrogate */
        "A-1\xf4\x90\x80\x80",     /* above U+10FFFF */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(dirty) / sizeof(dirty[0]); i++) {
        Once__Envelope *reply = text_request(LICENCE, PURPOSE, dirty[i]);
        Once__Error *e;
        Once__LogLeaf *leaf;

        assert_int_equal(e2e_reply_code(reply), ONCE_ERR_INVALID_TEXT);
        e = once__error__unpack(NULL, reply->body.len, reply->body.data);
        assert_non_null(e);
        assert_non_null(e->receipt);
        leaf = once__log_leaf__unpack(NULL, e->receipt->leaf.len,
                                      e->receipt->leaf.data);
        assert_non_null(leaf);
        assert_int_equal(leaf->error, ONCE__ERROR_CODE__ERROR_INVALID_TEXT);
        assert_string_equal(leaf->case_id, "");
        assert_string_equal(leaf->purpose, "");
        once__log_leaf__free_unpacked(leaf, NULL);
        once__error__free_unpacked(e, NULL);
        once__envelope__free_unpacked(reply, NULL);
    }
    /* The purpose and the type are held to the same rule. */
    {
        Once__Envelope *reply = text_request(LICENCE, "tax\nGRANTED", "A-2");

        assert_int_equal(e2e_reply_code(reply), ONCE_ERR_INVALID_TEXT);
        once__envelope__free_unpacked(reply, NULL);
        reply = text_request("licence\x1b", PURPOSE, "A-3");
        assert_int_equal(e2e_reply_code(reply), ONCE_ERR_INVALID_TEXT);
        once__envelope__free_unpacked(reply, NULL);
    }
    /* Any script is text: this purpose passes the rule, and market
     * supervision has no grant for it. */
    {
        Once__Envelope *reply = text_request(LICENCE, "\xe7\xa8\x8e\xe5\x8a"
                                             "\xa1\xe7\x99\xbb\xe8\xae"
                                             "\xb0 \xe2\x84\x96 1",
                                             "\xe6\xa1\x88-2026");

        assert_int_equal(e2e_reply_code(reply), ONCE_ERR_NO_GRANT);
        once__envelope__free_unpacked(reply, NULL);
    }
}

/* protobuf-c reads a disclosure name "name\0x" as "name", whose digest
 * the header holds, so this publish was stored with a name that another
 * implementation reads otherwise. */
static void test_disclosure_name_with_nul(void **state)
{
    static char placeholder[] = "nameQx";
    char subject[19], *name;
    Once__Publish *p;
    uint8_t *body, *changed;
    size_t len, at;

    (void)state;
    e2e_uscc(subject, 7700030);
    body = licence_publish(subject, 1, &len);
    p = once__publish__unpack(NULL, len, body);
    assert_non_null(p);
    assert_string_equal(p->disclosures[0]->name, "name");
    /* protobuf-c packs a string only up to a NUL: pack a placeholder of
     * the same length and put the NUL in the bytes. */
    name = p->disclosures[0]->name;
    p->disclosures[0]->name = placeholder;
    len = once__publish__get_packed_size(p);
    changed = malloc(len);
    assert_non_null(changed);
    once__publish__pack(p, changed);
    p->disclosures[0]->name = name;
    for (at = 0; at + 6 <= len; at++)
        if (memcmp(changed + at, placeholder, 6) == 0)
            break;
    assert_true(at + 6 <= len);
    changed[at + 4] = '\0';
    assert_int_equal(market_call(market_seq++, once_now_ms(),
                                 ONCE__KIND__KIND_PUBLISH, changed, len),
                     ONCE_ERR_INVALID_TEXT);
    once__publish__free_unpacked(p, NULL);
    free(changed);
    free(body);
}

/* A publish of a licence and then as many empty disclosures as fit in
 * 1 MiB (two bytes each): refused as TOO_LARGE from a count on the wire,
 * before half a million of them are decoded. */
static void test_too_many_disclosures(void **state)
{
    char subject[19];
    uint8_t *body, *big;
    size_t len, big_len = ONCE_MAX_MESSAGE - 512, at;
    Once__Envelope *reply;
    Once__Error *e;
    uint8_t *env;
    size_t env_len;
    uint64_t seq = market_seq++;

    (void)state;
    e2e_uscc(subject, 7700031);
    body = licence_publish(subject, 1, &len);
    big = malloc(big_len);
    assert_non_null(big);
    memcpy(big, body, len);
    for (at = len; at + 2 <= big_len; at += 2) {
        big[at] = 0x12; /* field 2, disclosures, empty */
        big[at + 1] = 0;
    }
    assert_int_equal(e2e_envelope(&env, &env_len, market.id, market_session,
                                  seq, once_now_ms(),
                                  ONCE__KIND__KIND_PUBLISH, big, at,
                                  &market.kp), 0);
    assert_true(env_len <= ONCE_MAX_MESSAGE);
    reply = call(&market_raw, env, env_len);
    assert_int_equal(e2e_reply_code(reply), ONCE_ERR_TOO_LARGE);
    e = once__error__unpack(NULL, reply->body.len, reply->body.data);
    assert_non_null(e);
    assert_non_null(strstr(e->message, "more than 64 disclosures"));
    once__error__free_unpacked(e, NULL);
    once__envelope__free_unpacked(reply, NULL);
    free(env);
    free(big);
    free(body);
}

/* PROTOCOL.md 2.1: seq starts at 1 and reply_to is 0 on a department's
 * envelope; fields once.proto does not define, in the envelope (where no
 * signature covers them) or in a body, are refused. */
static void test_envelope_loose_ends(void **state)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES], *env, *padded, *body;
    size_t len, body_len;
    uint64_t seq;

    (void)state;
    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, 0,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &market.kp), 0);
    assert_int_equal(call_code(&market_raw, env, len, 0), ONCE_ERR_MALFORMED);
    free(env);

    seq = market_seq++;
    e.version = 1;
    e.sender = market.id;
    e.session = market_session;
    e.seq = seq;
    e.sent_at = once_now_ms();
    e.kind = ONCE__KIND__KIND_PING;
    e.reply_to = 7;
    assert_int_equal(envelope_sign(&e, &market.kp, sig), 0);
    assert_int_equal(envelope_pack(&e, &env, &len), 0);
    assert_int_equal(call_code(&market_raw, env, len, seq),
                     ONCE_ERR_MALFORMED);
    free(env);

    /* Field 10 after a correctly signed envelope: the signature still
     * verifies, since it covers decoded fields only. An envelope that is
     * not one is answered with reply_to 0 (PROTOCOL.md 2.2). */
    seq = market_seq++;
    assert_int_equal(e2e_envelope(&env, &len, market.id, market_session, seq,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &market.kp), 0);
    padded = malloc(len + 2);
    assert_non_null(padded);
    memcpy(padded, env, len);
    padded[len] = 0x50; /* field 10, varint */
    padded[len + 1] = 0x01;
    assert_int_equal(call_code(&market_raw, padded, len + 2, 0),
                     ONCE_ERR_MALFORMED);
    free(padded);
    free(env);

    /* Field 7 of a Request is not defined. */
    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, licensed,
                                      PURPOSE, "A-4", 0), 0);
    padded = malloc(2 * body_len);
    assert_non_null(padded);
    memcpy(padded, body, body_len);
    padded[body_len] = 0x38; /* field 7, varint */
    padded[body_len + 1] = 0x01;
    assert_int_equal(market_call(market_seq++, once_now_ms(),
                                 ONCE__KIND__KIND_REQUEST, padded,
                                 body_len + 2),
                     ONCE_ERR_MALFORMED);
    /* Every field twice: protobuf-c would take the last copies. */
    memcpy(padded + body_len, body, body_len);
    assert_int_equal(market_call(market_seq++, once_now_ms(),
                                 ONCE__KIND__KIND_REQUEST, padded,
                                 2 * body_len),
                     ONCE_ERR_MALFORMED);
    /* The body itself is fine: market supervision has no grant. */
    assert_int_equal(market_call(market_seq++, once_now_ms(),
                                 ONCE__KIND__KIND_REQUEST, body, body_len),
                     ONCE_ERR_NO_GRANT);
    free(padded);
    free(body);
}

static void test_unknown_key_refused_at_handshake(void **state)
{
    e2e_raw r;
    uint8_t *env;
    size_t len;

    (void)state;
    assert_int_equal(e2e_raw_open(&r, &broker, &stranger.kp), 0);
    assert_int_equal(e2e_envelope(&env, &len, stranger.id, e2e_session(), 1,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &stranger.kp), 0);
    assert_int_equal(e2e_raw_send(&r, env, len), 0);
    assert_int_equal(e2e_raw_wait_event(&r, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                                ZMQ_EVENT_HANDSHAKE_SUCCEEDED,
                                        ANSWER_TIMEOUT_MS),
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    e2e_raw_close(&r);
    free(env);
}

/* Publishes a licence whose Publish body was changed by fn after signing;
 * returns the answer's code. undo (may be NULL) puts the decoded message
 * back in a state protobuf-c can free. */
static int publish_modified(void (*fn)(Once__Publish *p),
                            void (*undo)(Once__Publish *p), unsigned n)
{
    char subject[19];
    Once__Publish *p;
    uint8_t *body, *changed;
    size_t len;
    int code;

    e2e_uscc(subject, n);
    body = licence_publish(subject, 1, &len);
    p = once__publish__unpack(NULL, len, body);
    assert_non_null(p);
    fn(p);
    len = once__publish__get_packed_size(p);
    changed = malloc(len);
    assert_non_null(changed);
    once__publish__pack(p, changed);
    if (undo != NULL)
        undo(p);
    code = market_call(market_seq++, once_now_ms(), ONCE__KIND__KIND_PUBLISH,
                       changed, len);
    once__publish__free_unpacked(p, NULL);
    free(changed);
    free(body);
    return code;
}

static void tamper_value(Once__Publish *p)
{
    p->disclosures[0]->value.data[0] ^= 1;
}

static void drop_disclosure(Once__Publish *p)
{
    p->n_disclosures--;
}

static void undo_drop_disclosure(Once__Publish *p)
{
    p->n_disclosures++;
}

static Once__Disclosure *replaced;

static void duplicate_disclosure(Once__Publish *p)
{
    replaced = p->disclosures[1];
    p->disclosures[1] = p->disclosures[0];
}

static void undo_duplicate_disclosure(Once__Publish *p)
{
    p->disclosures[1] = replaced;
}

static void tamper_header(Once__Publish *p)
{
    p->record->header.data[p->record->header.len - 1] ^= 1;
}

static void test_tampered_records(void **state)
{
    (void)state;
    assert_int_equal(publish_modified(tamper_value, NULL, 7700010),
                     ONCE_ERR_INVALID_RECORD);
    assert_int_equal(publish_modified(drop_disclosure, undo_drop_disclosure,
                                      7700011),
                     ONCE_ERR_INVALID_RECORD);
    assert_int_equal(publish_modified(duplicate_disclosure,
                                      undo_duplicate_disclosure, 7700012),
                     ONCE_ERR_INVALID_RECORD);
    /* A changed header no longer matches the issuer's signature (or no
     * longer decodes). */
    {
        int code = publish_modified(tamper_header, NULL, 7700013);

        assert_true(code == ONCE_ERR_BAD_SIGNATURE ||
                    code == ONCE_ERR_INVALID_RECORD ||
                    code == ONCE_ERR_MALFORMED);
    }
}

static void test_pipelined(void **state)
{
    enum { N = 200 };
    bool seen[N] = { false };
    uint8_t *body;
    size_t body_len, i;
    uint64_t first = market_seq;

    (void)state;
    assert_int_equal(e2e_request_body(&body, &body_len, LICENCE, licensed,
                                      PURPOSE, "T-2", 0), 0);
    {
        e2e_raw tax_raw;
        uint64_t session = e2e_session();

        assert_int_equal(e2e_raw_open(&tax_raw, &broker, &tax.kp), 0);
        for (i = 0; i < N; i++) {
            uint8_t *env;
            size_t len;

            assert_int_equal(e2e_envelope(&env, &len, tax.id, session,
                                          first + i, once_now_ms(),
                                          ONCE__KIND__KIND_REQUEST, body,
                                          body_len, &tax.kp), 0);
            assert_int_equal(e2e_raw_send(&tax_raw, env, len), 0);
            free(env);
        }
        for (i = 0; i < N; i++) {
            Once__Envelope *reply = NULL;

            assert_int_equal(e2e_raw_recv(&tax_raw, ANSWER_TIMEOUT_MS,
                                          &reply), 1);
            assert_int_equal(e2e_reply_code(reply), 0);
            assert_true(reply->reply_to >= first &&
                        reply->reply_to < first + N);
            assert_false(seen[reply->reply_to - first]);
            seen[reply->reply_to - first] = true;
            once__envelope__free_unpacked(reply, NULL);
        }
        e2e_raw_close(&tax_raw);
    }
    free(body);
}

/* A publish retried with the same bytes after a restart gets its original
 * answer and is not stored twice. */
static void test_publish_retry_across_restart(void **state)
{
    uint64_t session = e2e_session();
    Once__Envelope *first, *again;
    Once__Response *response;
    char subject[19];
    uint8_t *body, *env, *other;
    size_t body_len, len, other_len;

    (void)state;
    e2e_uscc(subject, 7700020);
    body = licence_publish(subject, 1, &body_len);
    assert_int_equal(e2e_envelope(&env, &len, market.id, session, 1,
                                  once_now_ms(), ONCE__KIND__KIND_PUBLISH,
                                  body, body_len, &market.kp), 0);
    first = call(&market_raw, env, len);
    assert_int_equal(e2e_reply_code(first), 0);
    again = call(&market_raw, env, len);
    assert_int_equal(again->body.len, first->body.len);
    assert_memory_equal(again->body.data, first->body.data, first->body.len);
    once__envelope__free_unpacked(again, NULL);

    e2e_raw_close(&market_raw);
    assert_int_equal(e2e_stop(&broker), 0);
    assert_int_equal(e2e_start(&broker, &market, "--workers", "2", NULL), 0);
    assert_int_equal(e2e_raw_open(&market_raw, &broker, &market.kp), 0);

    again = call(&market_raw, env, len);
    assert_int_equal(again->kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(again->reply_to, 1);
    assert_int_equal(again->body.len, first->body.len);
    assert_memory_equal(again->body.data, first->body.data, first->body.len);
    response = once__response__unpack(NULL, again->body.len,
                                      again->body.data);
    assert_non_null(response);
    assert_int_equal(response->version, 1);
    assert_string_equal(response->subject, subject);
    once__response__free_unpacked(response, NULL);
    once__envelope__free_unpacked(again, NULL);
    once__envelope__free_unpacked(first, NULL);

    /* Other bytes under that (session, seq) are a replay, restart or not. */
    assert_int_equal(e2e_envelope(&other, &other_len, market.id, session, 1,
                                  once_now_ms(), ONCE__KIND__KIND_PING, NULL,
                                  0, &market.kp), 0);
    assert_int_equal(call_code(&market_raw, other, other_len, 1),
                     ONCE_ERR_REPLAY);
    free(other);
    free(env);
    free(body);

    /* And the record has one version. */
    {
        once_client *c = NULL;
        once_record *r = NULL;
        once_error err;

        assert_int_equal(e2e_client(&broker, &tax, &c, &err), 0);
        assert_int_equal(once_client_request(c, LICENCE, subject, PURPOSE,
                                             "T-3", 0, &r, &err), 0);
        assert_int_equal(once_record_version(r), 1);
        once_record_free(r);
        once_client_close(c);
    }
}

static void test_sigterm_exits_zero(void **state)
{
    (void)state;
    assert_int_equal(e2e_stop(&broker), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_reply_envelope),
        cmocka_unit_test(test_receipt_verifies_with_ping_info),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_sender_mismatch),
        cmocka_unit_test(test_retry_gets_same_answer),
        cmocka_unit_test(test_replay_with_other_bytes),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_clock_skew),
        cmocka_unit_test(test_oversize_answered),
        cmocka_unit_test(test_far_oversize_dropped),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_two_frames),
        cmocka_unit_test(test_session_zero),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_nul_in_sender),
        cmocka_unit_test(test_text_fields_are_clean),
        cmocka_unit_test(test_disclosure_name_with_nul),
        cmocka_unit_test(test_too_many_disclosures),
        cmocka_unit_test(test_envelope_loose_ends),
        cmocka_unit_test(test_unknown_key_refused_at_handshake),
        cmocka_unit_test(test_tampered_records),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_publish_retry_across_restart),
        cmocka_unit_test(test_sigterm_exits_zero),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
