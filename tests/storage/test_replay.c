/*
 * test_replay.c - the anti-replay windows of replay.c: verdicts, the
 * window's edges and wrap-around, envelopes in flight beyond the 32 answer
 * slots of a session, answers kept for retries, failures not kept
 * (replay_release), sweeping idle sessions,
 * and the per-department limits on sessions and envelopes in flight.
 *
 * replay_admit takes the clock as an argument, so sweeping is tested with
 * made-up times and never waits. Digests stand for the SHA-256 of the
 * envelope bytes: one per (seq, variant), so a variant is "other bytes
 * under the same seq".
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "replay.h"

#define KEEP_MS 1000

static replay_limits limits(size_t sessions_per_dept, size_t in_flight)
{
    replay_limits l = {
        .keep_ms = KEEP_MS,
        .max_sessions = 64,
        .max_sessions_per_department = sessions_per_dept,
        .max_in_flight_per_department = in_flight,
        .max_cached_bytes = 1 << 20,
    };

    return l;
}

static replay *make(const replay_limits *l)
{
    replay *r = NULL;
    once_error err;

    assert_int_equal(replay_create(&r, l, &err), 0);
    return r;
}

static void digest_of(uint64_t seq, unsigned variant, uint8_t digest[32])
{
    uint8_t input[12];

    memcpy(input, &seq, 8);
    memcpy(input + 8, &variant, 4);
    crypto_hash_sha256(digest, input, sizeof(input));
}

/* replay_admit with the digest of (seq, variant); frees a kept answer
 * unless out takes it. */
static replay_verdict admit_at(replay *r, const char *sender,
                               uint64_t session, uint64_t seq,
                               unsigned variant, uint64_t now_ms,
                               replay_answer *out)
{
    replay_answer answer;
    replay_verdict v;
    uint8_t digest[32];

    digest_of(seq, variant, digest);
    v = replay_admit(r, sender, session, seq, digest, now_ms, &answer);
    if (out != NULL)
        *out = answer;
    else
        free(answer.body);
    return v;
}

static replay_verdict admit(replay *r, const char *sender, uint64_t session,
                            uint64_t seq)
{
    return admit_at(r, sender, session, seq, 0, 1, NULL);
}

static void finish(replay *r, const char *sender, uint64_t session,
                   uint64_t seq)
{
    char body[32];

    snprintf(body, sizeof(body), "answer %llu", (unsigned long long)seq);
    replay_finish(r, sender, session, seq, ONCE__KIND__KIND_RESPONSE,
                  (const uint8_t *)body, strlen(body));
}

static size_t in_flight_of(replay *r, const char *sender)
{
    size_t sessions, in_flight;

    replay_department_usage(r, sender, &sessions, &in_flight);
    return in_flight;
}

static size_t sessions_of(replay *r, const char *sender)
{
    size_t sessions, in_flight;

    replay_department_usage(r, sender, &sessions, &in_flight);
    return sessions;
}

/* New, copy in flight, other bytes, answered copy, answered other bytes. */
static void test_verdicts(void **state)
{
    replay_limits l = limits(8, 8);
    replay *r = make(&l);
    replay_answer answer;

    (void)state;
    assert_int_equal(admit(r, "tax", 7, 1), REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "tax", 7, 1, 0, 1, NULL), REPLAY_IN_FLIGHT);
    assert_int_equal(admit_at(r, "tax", 7, 1, 1, 1, NULL), REPLAY_REFUSED);
    /* Another session and another sender have windows of their own. */
    assert_int_equal(admit(r, "tax", 8, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "bank", 7, 1), REPLAY_ADMITTED);
    finish(r, "tax", 7, 1);
    assert_int_equal(admit_at(r, "tax", 7, 1, 0, 2, &answer),
                     REPLAY_ANSWERED);
    assert_int_equal(answer.kind, ONCE__KIND__KIND_RESPONSE);
    assert_int_equal(answer.len, strlen("answer 1"));
    assert_memory_equal(answer.body, "answer 1", answer.len);
    free(answer.body);
    assert_int_equal(admit_at(r, "tax", 7, 1, 1, 2, NULL), REPLAY_REFUSED);
    /* Finishing twice, or what was never admitted, changes nothing. */
    finish(r, "tax", 7, 1);
    finish(r, "tax", 7, 99);
    assert_int_equal(in_flight_of(r, "tax"), 1);
    assert_int_equal(sessions_of(r, "tax"), 2);
    assert_int_equal(replay_session_count(r), 3);
    replay_destroy(r);
}

/* The window holds exactly the REPLAY_WINDOW seqs at and below the
 * highest, whatever word of the ring the highest falls in, and sliding
 * (by a little, by a whole ring, by far more) forgets what it left. */
static void test_window_edges_and_wrap(void **state)
{
    static const uint64_t highs[] = { 1, 63, 64, 1023, 1024, 1025, 1087,
                                      1088, 5000, 100000 };
    replay_limits l = limits(64, 1 << 20);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(highs) / sizeof(highs[0]); i++) {
        replay *r = make(&l);
        uint64_t h = highs[i], s;

        assert_int_equal(admit(r, "tax", 1, h), REPLAY_ADMITTED);
        for (s = h > REPLAY_WINDOW ? h - REPLAY_WINDOW + 1 : 1; s < h; s++)
            assert_int_equal(admit(r, "tax", 1, s), REPLAY_ADMITTED);
        if (h >= REPLAY_WINDOW)
            assert_int_equal(admit(r, "tax", 1, h - REPLAY_WINDOW),
                             REPLAY_UNKNOWN);
        for (s = h > REPLAY_WINDOW ? h - REPLAY_WINDOW + 1 : 1; s <= h; s++)
            finish(r, "tax", 1, s);
        replay_destroy(r);
    }
    {
        /* Slides of one word, of exactly one ring (17 words) and of more
         * land on words that held old seqs: those bits must be clear. */
        replay *r = make(&l);
        uint64_t ring = (REPLAY_WINDOW / 64 + 1) * 64;

        assert_int_equal(admit(r, "tax", 2, 5), REPLAY_ADMITTED);
        assert_int_equal(admit(r, "tax", 2, 5 + 64), REPLAY_ADMITTED);
        assert_int_equal(admit(r, "tax", 2, 5 + ring), REPLAY_ADMITTED);
        assert_int_equal(admit(r, "tax", 2, 5 + ring - 64),
                         REPLAY_ADMITTED);
        assert_int_equal(admit(r, "tax", 2, 5 + 3 * ring), REPLAY_ADMITTED);
        assert_int_equal(admit(r, "tax", 2, 5 + 2 * ring + 128),
                         REPLAY_ADMITTED);
        assert_int_equal(admit(r, "tax", 2, 5 + 3 * ring - 1),
                         REPLAY_ADMITTED);
        /* Still in flight, though far below the window: a copy is known. */
        assert_int_equal(admit(r, "tax", 2, 5), REPLAY_IN_FLIGHT);
        replay_destroy(r);
    }
}

/* Issue 7: with more than 32 envelopes in flight on one session, a copy
 * of each is still known to be in flight (dropped), never UNKNOWN (which
 * sent the caller to a replies table the writer had not filled yet, and
 * ended in REPLAY for a stored publish). */
static void test_more_in_flight_than_slots(void **state)
{
    enum { N = 100 };
    replay_limits l = limits(8, 1000);
    replay *r = make(&l);
    replay_answer answer;
    uint64_t s;

    (void)state;
    for (s = 1; s <= N; s++)
        assert_int_equal(admit(r, "market", 3, s), REPLAY_ADMITTED);
    assert_int_equal(in_flight_of(r, "market"), N);
    for (s = 1; s <= N; s++) {
        assert_int_equal(admit(r, "market", 3, s), REPLAY_IN_FLIGHT);
        assert_int_equal(admit_at(r, "market", 3, s, 1, 1, NULL),
                         REPLAY_REFUSED);
    }
    /* Answers end their flights in any order; the slots keep the latest
     * 32 answered seqs, the older ones are for the replies table. */
    for (s = N; s >= 1; s--)
        finish(r, "market", 3, s);
    assert_int_equal(in_flight_of(r, "market"), 0);
    for (s = N; s > N - 32; s--) {
        assert_int_equal(admit_at(r, "market", 3, s, 0, 1, &answer),
                         REPLAY_ANSWERED);
        assert_non_null(answer.body);
        free(answer.body);
    }
    for (; s >= 1; s--)
        assert_int_equal(admit(r, "market", 3, s), REPLAY_UNKNOWN);
    replay_destroy(r);
}

/* An answer not kept (none, or over the memory budget) still ends the
 * flight: a copy is ANSWERED without a body, for the table. */
static void test_answers_not_kept(void **state)
{
    replay_limits l = limits(8, 8);
    replay *r;
    replay_answer answer;
    uint8_t big[64];

    (void)state;
    l.max_cached_bytes = 32;
    r = make(&l);
    memset(big, 'x', sizeof(big));
    assert_int_equal(admit(r, "tax", 1, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "tax", 1, 2), REPLAY_ADMITTED);
    replay_finish(r, "tax", 1, 1, ONCE__KIND__KIND_RESPONSE, NULL, 0);
    replay_finish(r, "tax", 1, 2, ONCE__KIND__KIND_RESPONSE, big,
                  sizeof(big));
    assert_int_equal(in_flight_of(r, "tax"), 0);
    assert_int_equal(admit_at(r, "tax", 1, 1, 0, 1, &answer),
                     REPLAY_ANSWERED);
    assert_null(answer.body);
    assert_int_equal(admit_at(r, "tax", 1, 2, 0, 1, &answer),
                     REPLAY_ANSWERED);
    assert_null(answer.body);
    replay_destroy(r);
}

/* A flight ended by replay_release (the broker could not act) keeps no
 * answer: the same bytes are admitted again, once at a time, other bytes
 * stay a replay, and a finished retry is kept as usual. */
static void test_released_is_admitted_again(void **state)
{
    replay_limits l = limits(8, 8);
    replay *r = make(&l);
    replay_answer answer;

    (void)state;
    assert_int_equal(admit(r, "tax", 1, 5), REPLAY_ADMITTED);
    replay_release(r, "tax", 1, 5);
    assert_int_equal(in_flight_of(r, "tax"), 0);
    assert_int_equal(admit_at(r, "tax", 1, 5, 1, 1, NULL), REPLAY_REFUSED);
    assert_int_equal(admit(r, "tax", 1, 5), REPLAY_ADMITTED);
    assert_int_equal(in_flight_of(r, "tax"), 1);
    assert_int_equal(admit(r, "tax", 1, 5), REPLAY_IN_FLIGHT);
    finish(r, "tax", 1, 5);
    assert_int_equal(admit_at(r, "tax", 1, 5, 0, 1, &answer),
                     REPLAY_ANSWERED);
    assert_memory_equal(answer.body, "answer 5", answer.len);
    free(answer.body);
    /* Released and then pushed out of its slot by a later seq: the table
     * is asked, as for any seq no longer remembered. */
    assert_int_equal(admit(r, "tax", 1, 6), REPLAY_ADMITTED);
    replay_release(r, "tax", 1, 6);
    assert_int_equal(admit(r, "tax", 1, 6 + 32), REPLAY_ADMITTED);
    finish(r, "tax", 1, 6 + 32);
    assert_int_equal(admit(r, "tax", 1, 6), REPLAY_UNKNOWN);
    /* Releasing what is not in flight changes nothing. */
    replay_release(r, "tax", 1, 5);
    replay_release(r, "tax", 1, 99);
    assert_int_equal(admit(r, "tax", 1, 5), REPLAY_ANSWERED);
    assert_int_equal(in_flight_of(r, "tax"), 0);
    replay_destroy(r);
}

/* Sessions idle for keep_ms are forgotten, with their flights. */
static void test_sweep(void **state)
{
    replay_limits l = limits(64, 64);
    replay *r = make(&l);
    uint64_t s;

    (void)state;
    for (s = 1; s <= 20; s++)
        assert_int_equal(admit_at(r, "tax", s, 1, 0, 10, NULL),
                         REPLAY_ADMITTED);
    assert_int_equal(in_flight_of(r, "tax"), 20);
    /* Within keep_ms of their last envelope sessions stay, whatever the
     * stripes sweep. */
    assert_int_equal(admit_at(r, "tax", 1, 2, 0, 10 + KEEP_MS, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(replay_session_count(r), 20);
    replay_destroy(r);
    /* A session refused for want of room makes every stripe sweep, not
     * only its own: here the department's limit is full of idle sessions,
     * which may live in any stripe. */
    l = limits(2, 64);
    r = make(&l);
    assert_int_equal(admit_at(r, "tax", 1, 1, 0, 10, NULL), REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "tax", 2, 1, 0, 10, NULL), REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "tax", 3, 1, 0, 20, NULL),
                     REPLAY_OVER_SESSIONS);
    assert_int_equal(admit_at(r, "tax", 3, 1, 0, 20 + 2 * KEEP_MS, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "tax", 4, 1, 0, 20 + 2 * KEEP_MS, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(sessions_of(r, "tax"), 2);
    assert_int_equal(in_flight_of(r, "tax"), 2);
    /* The answer of a forgotten session's envelope is dropped quietly. */
    finish(r, "tax", 1, 1);
    assert_int_equal(in_flight_of(r, "tax"), 2);
    replay_destroy(r);
    /* The same when the whole table is full of one department's idle
     * sessions: another's new sessions are admitted once they are idle
     * (sweeping only the new session's stripe left the others refused
     * until each stripe happened to sweep itself, issue 7 item 4). */
    l = limits(64, 64);
    l.max_sessions = 2;
    r = make(&l);
    assert_int_equal(admit_at(r, "flood", 1, 1, 0, 10, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "flood", 2, 1, 0, 10, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "tax", 1, 1, 0, 20, NULL), REPLAY_NO_ROOM);
    assert_int_equal(admit_at(r, "tax", 1, 1, 0, 20 + 2 * KEEP_MS, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(admit_at(r, "tax", 2, 1, 0, 20 + 2 * KEEP_MS, NULL),
                     REPLAY_ADMITTED);
    assert_int_equal(replay_session_count(r), 2);
    assert_int_equal(sessions_of(r, "flood"), 0);
    /* A forgotten session starts afresh. */
    assert_int_equal(admit_at(r, "flood", 1, 1, 0, 30 + 4 * KEEP_MS, NULL),
                     REPLAY_ADMITTED);
    replay_destroy(r);
}

/* Issue 7, item 4: a department at its session limit is refused and only
 * it; its sessions go on; the table's overall bound is UNAVAILABLE's. */
static void test_session_limit_per_department(void **state)
{
    replay_limits l = limits(4, 64);
    replay *r;
    uint64_t s;

    (void)state;
    l.max_sessions = 10;
    r = make(&l);
    for (s = 1; s <= 4; s++)
        assert_int_equal(admit(r, "flood", s, 1), REPLAY_ADMITTED);
    for (s = 5; s <= 100; s++)
        assert_int_equal(admit(r, "flood", s, 1), REPLAY_OVER_SESSIONS);
    assert_int_equal(sessions_of(r, "flood"), 4);
    /* Its existing sessions are not affected. */
    assert_int_equal(admit(r, "flood", 1, 2), REPLAY_ADMITTED);
    /* Other departments are not affected. */
    for (s = 5; s <= 8; s++)
        assert_int_equal(admit(r, "tax", s, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "tax", 9, 1), REPLAY_OVER_SESSIONS);
    assert_int_equal(admit(r, "bank", 1, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "bank", 2, 1), REPLAY_ADMITTED);
    /* 10 sessions: the table is full for everyone under their limits. */
    assert_int_equal(admit(r, "bank", 3, 1), REPLAY_NO_ROOM);
    assert_int_equal(admit(r, "police", 1, 1), REPLAY_NO_ROOM);
    assert_int_equal(replay_session_count(r), 10);
    replay_destroy(r);
}

/* Issue 7, item 4: envelopes in flight are limited per department,
 * across its sessions; a refused one is not marked, so the same bytes
 * pass once an answer went out. */
static void test_in_flight_limit_per_department(void **state)
{
    replay_limits l = limits(8, 3);
    replay *r = make(&l);

    (void)state;
    assert_int_equal(admit(r, "market", 1, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "market", 1, 2), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "market", 2, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "market", 1, 3), REPLAY_OVER_IN_FLIGHT);
    assert_int_equal(admit(r, "market", 3, 1), REPLAY_OVER_IN_FLIGHT);
    assert_int_equal(in_flight_of(r, "market"), 3);
    /* Copies of envelopes in flight are not new flights. */
    assert_int_equal(admit(r, "market", 1, 2), REPLAY_IN_FLIGHT);
    /* Another department has its own count. */
    assert_int_equal(admit(r, "tax", 1, 1), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "tax", 1, 2), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "tax", 1, 3), REPLAY_ADMITTED);
    finish(r, "market", 1, 1);
    assert_int_equal(admit(r, "market", 1, 3), REPLAY_ADMITTED);
    assert_int_equal(admit(r, "market", 3, 1), REPLAY_OVER_IN_FLIGHT);
    finish(r, "market", 1, 2);
    finish(r, "market", 2, 1);
    finish(r, "market", 1, 3);
    assert_int_equal(in_flight_of(r, "market"), 0);
    assert_int_equal(admit(r, "market", 3, 1), REPLAY_ADMITTED);
    replay_destroy(r);
}

/* Copies of the same envelopes through several threads at once: each seq
 * is admitted exactly once, and every flight ends. */
typedef struct race {
    replay *r;
    int admitted[256];
} race;

static void *race_thread(void *arg)
{
    race *x = arg;
    uint64_t s;

    for (s = 1; s <= 256; s++) {
        if (admit(x->r, "tax", 42, s) == REPLAY_ADMITTED) {
            x->admitted[s - 1]++;
            finish(x->r, "tax", 42, s);
        }
    }
    return NULL;
}

static void test_copies_in_parallel(void **state)
{
    replay_limits l = limits(8, 1024);
    race x[4];
    pthread_t threads[4];
    replay *r = make(&l);
    size_t t, s;

    (void)state;
    memset(x, 0, sizeof(x));
    for (t = 0; t < 4; t++) {
        x[t].r = r;
        assert_int_equal(pthread_create(&threads[t], NULL, race_thread,
                                        &x[t]), 0);
    }
    for (t = 0; t < 4; t++)
        pthread_join(threads[t], NULL);
    for (s = 0; s < 256; s++)
        assert_int_equal(x[0].admitted[s] + x[1].admitted[s] +
                             x[2].admitted[s] + x[3].admitted[s], 1);
    assert_int_equal(in_flight_of(r, "tax"), 0);
    replay_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_window_edges_and_wrap),
        cmocka_unit_test(test_more_in_flight_than_slots),
        cmocka_unit_test(test_answers_not_kept),
        cmocka_unit_test(test_released_is_admitted_again),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_session_limit_per_department),
        cmocka_unit_test(test_in_flight_limit_per_department),
        cmocka_unit_test(test_copies_in_parallel),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
