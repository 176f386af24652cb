/*
 * test_checkpoint.c - C2SP signed-note checkpoints: round trip, and every
 * kind of damage refused; the unverified parsers tools use before they
 * know which key to check with, against notes written out by hand.
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

static int sign_size(uint64_t size, char *note, size_t cap)
{
    checkpoint c;

    memset(&c, 0, sizeof(c));
    strcpy(c.origin, ORIGIN);
    c.size = size;
    memset(c.root, 0xab, sizeof(c.root));
    return checkpoint_sign(&c, ORIGIN, &broker_key, note, cap, NULL);
}

static int sign_sample(char *note, size_t cap)
{
    return sign_size(1234567, note, cap);
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

/* The root of sign_size's checkpoints, 32 bytes of 0xab, and other
 * spellings of roots. */
#define ROOT_AB "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="
#define ROOT_AB_31 "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqw=="
#define ROOT_AB_33 "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6ur"
#define SIGNATURE_LINE "\xe2\x80\x94 " ORIGIN " AAAA\n"

/* A line of n 'o's and a newline, then the rest of a checkpoint. */
static size_t long_origin_note(char *note, size_t n)
{
    static const char rest[] = "\n1\n" ROOT_AB "\n\n" SIGNATURE_LINE;

    memset(note, 'o', n);
    memcpy(note + n, rest, sizeof(rest));
    return n + sizeof(rest) - 1;
}

static void test_note_origin(void **state)
{
    /* No newline, an empty line, control characters. */
    static const struct {
        const char *note;
        size_t len;
    } refused[] = {
        {"log", 3}, {"\nlog\n", 5}, {"l\tg\n", 4}, {"log\r\n", 5},
        {"l\0g\n", 4},
    };
    char note[CHECKPOINT_MAX_NOTE + 1], origin[CHECKPOINT_MAX_ORIGIN + 2];
    int len = sign_sample(note, sizeof(note));
    size_t n, i;

    (void)state;
    assert_int_equal(checkpoint_note_origin(note, (size_t)len, origin,
                                            sizeof(ORIGIN)),
                     0);
    assert_string_equal(origin, ORIGIN);
    assert_int_equal(checkpoint_note_origin(note, (size_t)len, origin,
                                            sizeof(ORIGIN) - 1),
                     -1);
    /* However the rest looks: the tool needs the name to pick a key
     * before it can say what is wrong with the note. */
    assert_int_equal(checkpoint_note_origin("log\ngarbage", 11, origin,
                                            sizeof(origin)),
                     0);
    assert_string_equal(origin, "log");
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (checkpoint_note_origin(refused[i].note, refused[i].len, origin,
                                   sizeof(origin)) != -1)
            fail_msg("refused[%zu] accepted", i);
    n = long_origin_note(note, CHECKPOINT_MAX_ORIGIN);
    assert_int_equal(checkpoint_note_origin(note, n, origin, sizeof(origin)),
                     0);
    assert_int_equal(strlen(origin), CHECKPOINT_MAX_ORIGIN);
    n = long_origin_note(note, CHECKPOINT_MAX_ORIGIN + 1);
    assert_int_equal(checkpoint_note_origin(note, n, origin, sizeof(origin)),
                     -1);
    /* A note over the limit is refused however short its first line. */
    len = sign_sample(note, sizeof(note));
    memset(note + len, '-', sizeof(note) - (size_t)len);
    assert_int_equal(checkpoint_note_origin(note, CHECKPOINT_MAX_NOTE, origin,
                                            sizeof(origin)),
                     0);
    assert_int_equal(checkpoint_note_origin(note, CHECKPOINT_MAX_NOTE + 1,
                                            origin, sizeof(origin)),
                     -1);
}

static void test_parse_unverified_reads_signed_notes(void **state)
{
    static const char extended[] = ORIGIN "\n0\n" ROOT_AB "\n"
                                   "an extension line\n\n" SIGNATURE_LINE;
    char note[CHECKPOINT_MAX_NOTE + 1];
    int len = sign_size(UINT64_MAX, note, sizeof(note));
    checkpoint c;

    (void)state;
    assert_true(len > 0);
    assert_int_equal(checkpoint_parse_unverified(note, (size_t)len, &c, NULL),
                     0);
    assert_string_equal(c.origin, ORIGIN);
    assert_true(c.size == UINT64_MAX);
    assert_int_equal(c.root[0], 0xab);
    assert_int_equal(c.root[31], 0xab);
    assert_int_equal(checkpoint_parse_unverified(extended,
                                                 sizeof(extended) - 1, &c,
                                                 NULL),
                     0);
    assert_int_equal(c.size, 0);
    /* The signature block is not read, up to the length limit. */
    len = sign_sample(note, sizeof(note));
    memset(note + len, '-', sizeof(note) - (size_t)len);
    assert_int_equal(checkpoint_parse_unverified(note, CHECKPOINT_MAX_NOTE, &c,
                                                 NULL),
                     0);
    assert_int_equal(c.size, 1234567);
    assert_int_equal(checkpoint_parse_unverified(note, CHECKPOINT_MAX_NOTE + 1,
                                                 &c, NULL),
                     -ONCE_ERR_MALFORMED);
}

static void test_parse_unverified_refusals(void **state)
{
#define NOTE_OF(body) body, sizeof(body) - 1
    static const struct {
        const char *note;
        size_t len;
        const char *reason;
    } refused[] = {
        {NOTE_OF(""), "empty"},
        {NOTE_OF(ORIGIN), "origin"},
        {NOTE_OF("\n1\n" ROOT_AB "\n\n" SIGNATURE_LINE), "origin"},
        {NOTE_OF("log\x01\n1\n" ROOT_AB "\n\n" SIGNATURE_LINE), "origin"},
        {NOTE_OF("log\r\n1\n" ROOT_AB "\n\n" SIGNATURE_LINE), "origin"},
        {NOTE_OF("l\0g\n1\n" ROOT_AB "\n\n" SIGNATURE_LINE), "origin"},
        {NOTE_OF(ORIGIN "\n01\n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n00\n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n\n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n-1\n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n+1\n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n1 \n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n1\r\n" ROOT_AB "\n\n" SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n18446744073709551616\n" ROOT_AB "\n\n"
                 SIGNATURE_LINE), "size"},
        {NOTE_OF(ORIGIN "\n1"), "size"},
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB_31 "\n\n" SIGNATURE_LINE), "root"},
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB_33 "\n\n" SIGNATURE_LINE), "root"},
        /* Leftover bits, padding, the alphabet: one spelling per root. */
        {NOTE_OF(ORIGIN "\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6t=\n\n"
                 SIGNATURE_LINE), "root"},
        {NOTE_OF(ORIGIN "\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s\n\n"
                 SIGNATURE_LINE), "root"},
        {NOTE_OF(ORIGIN "\n1\n\xff/////////////////////////////////////////"
                 "8=\n\n" SIGNATURE_LINE), "root"},
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB "\r\n\n" SIGNATURE_LINE), "root"},
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB), "root"},
        /* The body ends at a blank line; without one the signature line
         * would be read as an extension line and nothing signs the body. */
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB "\n" SIGNATURE_LINE), "signature"},
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB "\n"), "signature"},
        {NOTE_OF(ORIGIN "\n1\n" ROOT_AB "\next\x7f\n\n" SIGNATURE_LINE),
         "extension"},
    };
#undef NOTE_OF
    char note[CHECKPOINT_MAX_NOTE];
    once_error err;
    checkpoint c;
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (checkpoint_parse_unverified(refused[i].note, refused[i].len, &c,
                                        &err) != -ONCE_ERR_MALFORMED)
            fail_msg("refused[%zu] accepted", i);
        if (strstr(err.message, refused[i].reason) == NULL)
            fail_msg("refused[%zu]: \"%s\" does not say \"%s\"", i,
                     err.message, refused[i].reason);
    }
    n = long_origin_note(note, CHECKPOINT_MAX_ORIGIN);
    assert_int_equal(checkpoint_parse_unverified(note, n, &c, NULL), 0);
    assert_int_equal(strlen(c.origin), CHECKPOINT_MAX_ORIGIN);
    n = long_origin_note(note, CHECKPOINT_MAX_ORIGIN + 1);
    assert_int_equal(checkpoint_parse_unverified(note, n, &c, NULL),
                     -ONCE_ERR_MALFORMED);
}

/* libsodium 1.0.18 decodes every byte from 0x80 up as the base64 digit
 * '/', so without the alphabet check a copy of a checkpoint with such a
 * byte for a '/' of its signature verified too: two spellings of one
 * signed checkpoint, and byte-for-byte comparison of copies would lie. */
static void test_high_byte_for_slash_does_not_verify(void **state)
{
    static const char high_bytes[] = {'\x80', '\xaf', '\xff'};
    char note[CHECKPOINT_MAX_NOTE], *signature, *slash = NULL;
    checkpoint out;
    once_error err;
    uint64_t size;
    size_t i;
    int len = 0;

    (void)state;
    /* Ed25519 is deterministic: the same size is found on every run. */
    for (size = 1; slash == NULL; size++) {
        assert_true(size < 1000);
        len = sign_size(size, note, sizeof(note));
        assert_true(len > 0);
        signature = strrchr(note, ' ') + 1;
        slash = strchr(signature, '/');
    }
    assert_int_equal(checkpoint_verify(note, (size_t)len, ORIGIN,
                                       broker_key.public_key, &out, NULL),
                     0);
    for (i = 0; i < sizeof(high_bytes); i++) {
        *slash = high_bytes[i];
        assert_int_equal(checkpoint_verify(note, (size_t)len, ORIGIN,
                                           broker_key.public_key, &out,
                                           &err),
                         -ONCE_ERR_BAD_SIGNATURE);
    }
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
        cmocka_unit_test(test_note_origin),
        cmocka_unit_test(test_parse_unverified_reads_signed_notes),
        cmocka_unit_test(test_parse_unverified_refusals),
        cmocka_unit_test(test_high_byte_for_slash_does_not_verify),
    };
    return cmocka_run_group_tests(tests, setup_keys, NULL);
}
