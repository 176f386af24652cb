/*
 * test_checkpoint.c - C2SP signed-note checkpoints: round trip, and every
 * kind of damage refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "checkpoint.h"
#include "once/once.h"

#define ORIGIN "once.example.gov/log"

static once_keypair broker_key, other_key;

static int setup_keys(void **state)
{
    uint8_t seed[32];

    (void)state;
    if (once_init() < 0)
        return -1;
    memset(seed, 0x42, sizeof(seed));
    once_keypair_from_seed(&broker_key, seed);
    memset(seed, 0x17, sizeof(seed));
    once_keypair_from_seed(&other_key, seed);
    return 0;
}

static int sign_sample(char *note, size_t cap)
{
    checkpoint c;

    memset(&c, 0, sizeof(c));
    strcpy(c.origin, ORIGIN);
    c.size = 1234567;
    memset(c.root, 0xab, sizeof(c.root));
    return checkpoint_sign(&c, ORIGIN, &broker_key, note, cap, NULL);
}

static void test_round_trip(void **state)
{
    char note[CHECKPOINT_MAX_NOTE];
    checkpoint out;
    int len = sign_sample(note, sizeof(note));

    (void)state;
    assert_true(len > 0);
    assert_non_null(strstr(note, ORIGIN "\n1234567\n"));
    assert_int_equal(checkpoint_verify(note, (size_t)len, ORIGIN,
                                       broker_key.public_key, &out, NULL),
                     0);
    assert_string_equal(out.origin, ORIGIN);
    assert_int_equal(out.size, 1234567);
    assert_int_equal(out.root[0], 0xab);
}

static void test_key_id_is_c2sp(void **state)
{
    uint8_t id[4], expect[32], buf[64];
    size_t n = strlen(ORIGIN);

    (void)state;
    memcpy(buf, ORIGIN, n);
    buf[n] = '\n';
    buf[n + 1] = 0x01;
    memcpy(buf + n + 2, broker_key.public_key, 32);
    crypto_hash_sha256(expect, buf, n + 34);
    checkpoint_key_id(ORIGIN, broker_key.public_key, id);
    assert_memory_equal(id, expect, 4);
}

static void test_every_flipped_byte_is_refused(void **state)
{
    char note[CHECKPOINT_MAX_NOTE];
    checkpoint out;
    int len = sign_sample(note, sizeof(note)), i;

    (void)state;
    for (i = 0; i < len; i++) {
        note[i] ^= 0x01;
        assert_int_not_equal(checkpoint_verify(note, (size_t)len, ORIGIN,
                                               broker_key.public_key, &out,
                                               NULL),
                             0);
        note[i] ^= 0x01;
    }
}

static void test_wrong_key_and_truncation_refused(void **state)
{
    char note[CHECKPOINT_MAX_NOTE];
    checkpoint out;
    once_error err;
    int len = sign_sample(note, sizeof(note)), cut;

    (void)state;
    assert_int_equal(checkpoint_verify(note, (size_t)len, ORIGIN,
                                       other_key.public_key, &out, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    for (cut = 0; cut < len; cut++)
        assert_int_not_equal(checkpoint_verify(note, (size_t)cut, ORIGIN,
                                               broker_key.public_key, &out,
                                               NULL),
                             0);
}

static void test_other_signers_are_ignored(void **state)
{
    char note[CHECKPOINT_MAX_NOTE], cosigned[CHECKPOINT_MAX_NOTE];
    checkpoint out;
    const char *sig;
    size_t body;

    (void)state;
    assert_true(sign_sample(note, sizeof(note)) > 0);
    /* a witness line by another name before ours */
    sig = strstr(note, "\n\n") + 2;
    body = (size_t)(sig - note);
    memcpy(cosigned, note, body);
    strcpy(cosigned + body,
           "\xe2\x80\x94 witness.example AAAAAQ==\n");
    strcat(cosigned, sig);
    assert_int_equal(checkpoint_verify(cosigned, strlen(cosigned), ORIGIN,
                                       broker_key.public_key, &out, NULL),
                     0);
}

static void test_origin_rule(void **state)
{
    char longest[CHECKPOINT_MAX_ORIGIN + 2];

    (void)state;
    assert_true(checkpoint_origin_is_valid(ORIGIN));
    assert_false(checkpoint_origin_is_valid(""));
    assert_false(checkpoint_origin_is_valid("once example"));
    assert_false(checkpoint_origin_is_valid("once+example"));
    assert_false(checkpoint_origin_is_valid("once;example"));
    assert_false(checkpoint_origin_is_valid("once#example"));
    assert_false(checkpoint_origin_is_valid("once\texample"));
    assert_false(checkpoint_origin_is_valid("once\xe2\x80\x94" "example"));
    memset(longest, 'a', sizeof(longest));
    longest[CHECKPOINT_MAX_ORIGIN] = '\0';
    assert_true(checkpoint_origin_is_valid(longest));
    longest[CHECKPOINT_MAX_ORIGIN] = 'a';
    longest[CHECKPOINT_MAX_ORIGIN + 1] = '\0';
    assert_false(checkpoint_origin_is_valid(longest));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_key_id_is_c2sp),
        cmocka_unit_test(test_every_flipped_byte_is_refused),
        cmocka_unit_test(test_wrong_key_and_truncation_refused),
        cmocka_unit_test(test_other_signers_are_ignored),
        cmocka_unit_test(test_origin_rule),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
