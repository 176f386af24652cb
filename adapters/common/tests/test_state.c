/*
 * test_state.c - the adapters' idempotency state (state.c) on a real LMDB
 * directory: what is kept is found again, the same key holds one entry,
 * and expired entries go while the adapter runs, not only at its next
 * start (before, a gateway running for months grew its state until the
 * map was full and every PUT failed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "common.h"

static char top[] = "/tmp/once-state-XXXXXX";
static char dir[sizeof(top) + 8];

static void put(idem_state *s, const char *key)
{
    idem_entry e;
    once_error err;

    memset(&e, 0, sizeof(e));
    e.envelope = (uint8_t *)"signed envelope bytes";
    e.envelope_len = 21;
    e.status = 201;
    e.answer = "{\"version\":1}";
    e.version = 1;
    assert_int_equal(state_put(s, "tax-clerk", key, &e, &err), 0);
}

static int found(idem_state *s, const char *key)
{
    idem_entry e;
    once_error err;
    int rc = state_get(s, "tax-clerk", key, &e, &err);

    if (rc == 0) {
        assert_int_equal(e.status, 201);
        assert_memory_equal(e.envelope, "signed envelope bytes", 21);
        assert_string_equal(e.answer, "{\"version\":1}");
        idem_entry_clear(&e);
        return 1;
    }
    assert_int_equal(rc, -ONCE_ERR_NOT_FOUND);
    return 0;
}

static void wait_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&t, NULL);
}

static void test_kept_entries_are_found(void **state)
{
    idem_state *s;
    once_error err;
    char key[32];
    int i;

    (void)state;
    assert_int_equal(state_open(&s, dir, 0, &err), 0);
    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "kept-%03d", i);
        put(s, key);
    }
    /* The sweeps of those writes removed none of them. */
    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "kept-%03d", i);
        assert_true(found(s, key));
    }
    state_close(s);
    /* Nor does the pass at the next start. */
    assert_int_equal(state_open(&s, dir, 0, &err), 0);
    assert_true(found(s, "kept-000"));
    assert_true(found(s, "kept-199"));
    state_close(s);
}

static void test_expired_entries_go_while_running(void **state)
{
    idem_state *s;
    once_error err;
    char key[32];
    int i, left = 0;

    (void)state;
    /* Kept 50 ms: everything written below expires while it runs. */
    assert_int_equal(state_open(&s, dir, 50, &err), 0);
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "old-%03d", i);
        put(s, key);
    }
    wait_ms(120);
    /* 8 entries a write: 100 old ones and the 200 of the test before
     * (expired too, at 50 ms) are visited within 40 writes. */
    for (i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "new-%03d", i);
        put(s, key);
    }
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "old-%03d", i);
        left += found(s, key);
    }
    assert_int_equal(left, 0);
    /* The newest write is never its own sweep's victim. */
    assert_true(found(s, "new-039"));
    state_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_entries_are_found),
        cmocka_unit_test(test_expired_entries_go_while_running),
    };
    char cmd[64];
    int failed;

    if (mkdtemp(top) == NULL)
        return 1;
    snprintf(dir, sizeof(dir), "%s/state", top);
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    if (system(cmd) != 0)
        return 1;
    return failed;
}
