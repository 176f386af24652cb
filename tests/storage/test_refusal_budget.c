/*
 * test_refusal_budget.c - the budget of logged refusals per department
 * (broker/refusal_budget.c): the burst, the even refill, the cap on what
 * idle time saves up, the codes that never count, departments apart, the
 * count of refusals left out, and no unit taken twice by racing threads.
 *
 * refusal_budget_take takes the clock as an argument, so the refill is
 * tested with made-up times and nothing waits.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

#include "diag.h"
#include "refusal_budget.h"

/* 6 per minute: one unit every 10 s. */
#define BURST 6
#define WINDOW_S 60
#define INTERVAL_MS (WINDOW_S * 1000 / BURST)
#define T0 1000000u

static refusal_budget *make(unsigned burst, unsigned window_s)
{
    refusal_budget *b = NULL;
    once_error err;

    assert_int_equal(refusal_budget_create(&b, burst, window_s, &err), 0);
    return b;
}

static bool take(refusal_budget *b, const char *dept, uint64_t now_ms)
{
    uint64_t wait_ms;

    return refusal_budget_take(b, dept, ONCE_ERR_NO_GRANT, now_ms, &wait_ms);
}

static void test_burst_then_even_refill(void **state)
{
    refusal_budget *b = make(BURST, WINDOW_S);
    uint64_t wait_ms;
    int i;

    (void)state;
    for (i = 0; i < BURST; i++)
        assert_true(take(b, "tax", T0));
    assert_false(refusal_budget_take(b, "tax", ONCE_ERR_NO_GRANT, T0,
                                     &wait_ms));
    assert_int_equal(wait_ms, INTERVAL_MS);
    assert_int_equal(refusal_budget_unlogged(b, "tax"), 1);
    /* One unit comes back every INTERVAL_MS, not before. */
    assert_false(take(b, "tax", T0 + INTERVAL_MS - 1));
    assert_true(take(b, "tax", T0 + INTERVAL_MS));
    assert_false(take(b, "tax", T0 + INTERVAL_MS));
    /* After a whole window the bucket is full again, and no fuller: a
     * long idle time saves up only BURST. */
    for (i = 0; i < BURST; i++)
        assert_true(take(b, "tax", T0 + 100u * WINDOW_S * 1000u));
    assert_false(take(b, "tax", T0 + 100u * WINDOW_S * 1000u));
    assert_int_equal(refusal_budget_unlogged(b, "tax"), 4);
    refusal_budget_free(b);
}

static void test_codes_that_never_count(void **state)
{
    static const int exempt[] = {
        ONCE_ERR_NOT_FOUND, ONCE_ERR_STALE_VERSION, ONCE_ERR_INTERNAL,
        ONCE_ERR_STORAGE_FULL, ONCE_ERR_UNAVAILABLE, ONCE_ERR_NO_MEMORY,
    };
    refusal_budget *b = make(1, WINDOW_S);
    uint64_t wait_ms;
    size_t i;

    (void)state;
    assert_true(take(b, "tax", T0));
    assert_false(take(b, "tax", T0));
    for (i = 0; i < sizeof(exempt) / sizeof(exempt[0]); i++) {
        assert_false(refusal_budget_counts(exempt[i]));
        assert_true(refusal_budget_take(b, "tax", exempt[i], T0, &wait_ms));
        assert_true(refusal_budget_take(b, "tax", -exempt[i], T0, &wait_ms));
    }
    assert_true(refusal_budget_counts(ONCE_ERR_BAD_SIGNATURE));
    assert_true(refusal_budget_counts(ONCE_ERR_QUOTA_EXCEEDED));
    assert_false(refusal_budget_take(b, "tax", ONCE_ERR_BAD_SIGNATURE, T0,
                                     &wait_ms));
    /* The exempt ones took nothing: one unit after one interval. */
    assert_true(take(b, "tax", T0 + WINDOW_S * 1000u));
    refusal_budget_free(b);
}

static void test_departments_apart(void **state)
{
    refusal_budget *b = make(2, WINDOW_S);

    (void)state;
    assert_true(take(b, "flood", T0));
    assert_true(take(b, "flood", T0));
    assert_false(take(b, "flood", T0));
    assert_true(take(b, "tax", T0));
    assert_true(take(b, "tax", T0));
    assert_false(take(b, "tax", T0));
    assert_int_equal(refusal_budget_unlogged(b, "flood"), 1);
    assert_int_equal(refusal_budget_unlogged(b, "tax"), 1);
    assert_int_equal(refusal_budget_unlogged(b, "market"), 0);
    refusal_budget_free(b);
}

static void test_settings_checked(void **state)
{
    refusal_budget *b = NULL;
    once_error err;

    (void)state;
    assert_int_equal(refusal_budget_create(&b, 0, WINDOW_S, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(refusal_budget_create(&b, 1, 0, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    /* The largest burst in the shortest window still refills. */
    b = make(1000000, 1);
    assert_true(take(b, "tax", T0));
    refusal_budget_free(b);
}

#define THREADS 4
#define TRIES 5000
#define RACE_BURST 1000

typedef struct racer {
    pthread_t thread;
    refusal_budget *b;
    unsigned taken;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    int i;

    for (i = 0; i < TRIES; i++)
        if (take(r->b, i % 2 ? "flood" : "tax", T0))
            r->taken++;
    return NULL;
}

/* Threads charging the same departments at one instant take exactly the
 * burst of each, never one more. */
static void test_no_unit_taken_twice(void **state)
{
    refusal_budget *b = make(RACE_BURST, WINDOW_S);
    racer racers[THREADS] = { { 0 } };
    unsigned total = 0;
    int i;

    (void)state;
    for (i = 0; i < THREADS; i++) {
        racers[i].b = b;
        assert_int_equal(pthread_create(&racers[i].thread, NULL, race,
                                        &racers[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(racers[i].thread, NULL);
        total += racers[i].taken;
    }
    assert_int_equal(total, 2 * RACE_BURST);
    assert_int_equal(refusal_budget_unlogged(b, "tax") +
                         refusal_budget_unlogged(b, "flood"),
                     THREADS * TRIES - 2 * RACE_BURST);
    refusal_budget_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_even_refill),
        cmocka_unit_test(test_codes_that_never_count),
        cmocka_unit_test(test_departments_apart),
        cmocka_unit_test(test_settings_checked),
        cmocka_unit_test(test_no_unit_taken_twice),
    };

    if (sodium_init() < 0)
        return 1;
    /* The lines about refusals left out are not what is tested. */
    diag_init(DIAG_LEVEL_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
