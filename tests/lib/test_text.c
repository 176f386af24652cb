/*
 * test_text.c - the clean-text rule (text_check.c), the wire walker that
 * applies it with once.proto's shapes (wire_schema.c), and libonce's
 * client refusing dirty text before it sends anything.
 *
 * The byte strings are the edges of RFC 3629 (the first and last code
 * point of each length, overlong forms, surrogates, beyond U+10FFFF) and
 * each excluded range of PROTOCOL.md 9.4 at both ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "once/once.h"
#include "once.pb-c.h"
#include "text_check.h"
#include "wire_schema.h"

static bool clean(const char *s)
{
    return text_is_clean_utf8((const uint8_t *)s, strlen(s));
}

static void test_clean_text(void **state)
{
    (void)state;
    assert_true(clean(""));
    assert_true(clean("tax-registration 2026"));
    assert_true(clean(" ~"));                  /* U+0020, U+007E */
    assert_true(clean("\xc2\xa0"));            /* U+00A0, after C1 */
    assert_true(clean("\xdf\xbf"));            /* U+07FF */
    assert_true(clean("\xe0\xa0\x80"));        /* U+0800 */
    assert_true(clean("\xe7\xa8\x8e\xe5\x8a\xa1")); /* two CJK letters */
    assert_true(clean("\xe2\x80\xa7"));        /* U+2027, before U+2028 */
    assert_true(clean("\xe2\x80\xaf"));        /* U+202F, after the bidi */
    assert_true(clean("\xed\x9f\xbf"));        /* U+D7FF */
    assert_true(clean("\xee\x80\x80"));        /* U+E000 */
    assert_true(clean("\xef\xbf\xbd"));        /* U+FFFD */
    assert_true(clean("\xf0\x90\x80\x80"));    /* U+10000 */
    assert_true(clean("\xf0\x9f\x98\x80"));    /* an emoji */
    assert_true(clean("\xf4\x8f\xbf\xbf"));    /* U+10FFFF */

    assert_false(text_is_clean_utf8((const uint8_t *)"a\0b", 3));
    assert_false(clean("\x01"));
    assert_false(clean("a\tb"));
    assert_false(clean("a\nb"));
    assert_false(clean("a\rb"));
    assert_false(clean("\x1b[31m"));
    assert_false(clean("\x1f"));
    assert_false(clean("\x7f"));
    assert_false(clean("\xc2\x80"));           /* U+0080 */
    assert_false(clean("\xc2\x9b"));           /* U+009B, CSI */
    assert_false(clean("\xc2\x9f"));           /* U+009F */
    assert_false(clean("\xe2\x80\xa8"));       /* U+2028 */
    assert_false(clean("\xe2\x80\xa9"));       /* U+2029 */
    assert_false(clean("\xe2\x80\xaa"));       /* U+202A */
    assert_false(clean("\xe2\x80\xae"));       /* U+202E */
    assert_false(clean("\xe2\x81\xa6"));       /* U+2066 */
    assert_false(clean("\xe2\x81\xa9"));       /* U+2069 */

    assert_false(clean("\x80"));               /* a lone continuation */
    assert_false(clean("\xbf"));
    assert_false(clean("\xc0\xaf"));           /* overlong '/' */
    assert_false(clean("\xc1\xbf"));
    assert_false(clean("\xe0\x80\xaf"));       /* overlong, 3 bytes */
    assert_false(clean("\xe0\x9f\xbf"));       /* overlong U+07FF */
    assert_false(clean("\xf0\x80\x80\xaf"));   /* overlong, 4 bytes */
    assert_false(clean("\xf0\x8f\xbf\xbf"));   /* overlong U+FFFF */
    assert_false(clean("\xed\xa0\x80"));       /* U+D800 */
    assert_false(clean("\xed\xbf\xbf"));       /* U+DFFF */
    assert_false(clean("\xf4\x90\x80\x80"));   /* U+110000 */
    assert_false(clean("\xf5\x80\x80\x80"));
    assert_false(clean("\xff"));
    assert_false(clean("\xfe"));
    assert_false(clean("\xc2"));               /* cut short */
    assert_false(clean("\xe2\x82"));
    assert_false(clean("\xf0\x9f\x98"));
    assert_false(clean("\xc2" "a"));           /* not a continuation */
    assert_false(clean("\xe2\x28\xa1"));

    assert_true(text_is_clean_string("abc", 3));
    assert_false(text_is_clean_string("abcd", 3));
    assert_false(text_is_clean_string(NULL, 3));
}

static int check_request(const uint8_t *p, size_t len)
{
    once_error err;

    return wire_check(p, len, &wire_request, &err);
}

static void test_wire_shapes(void **state)
{
    /* type "t", purpose "p", version 1 */
    static const uint8_t ok[] = {0x0a, 1, 't', 0x1a, 1, 'p', 0x28, 1};
    static const uint8_t unknown[] = {0x0a, 1, 't', 0x40, 1};
    /* user (7) is text like purpose: a name passes, a newline does not */
    static const uint8_t user[] = {0x0a, 1, 't', 0x3a, 2, 'u', '1'};
    static const uint8_t dirty_user[] = {0x0a, 1, 't', 0x3a, 2, 'u', '\n'};
    static const uint8_t user_varint[] = {0x38, 1};
    static const uint8_t twice[] = {0x0a, 1, 't', 0x0a, 1, 'u'};
    static const uint8_t wrong_type[] = {0x08, 1};
    static const uint8_t cut[] = {0x0a, 5, 't'};
    static const uint8_t dirty[] = {0x0a, 1, 't', 0x22, 1, '\n'};
    static const uint8_t dirty_then_unknown[] = {0x22, 1, '\n', 0x40, 1};
    static const uint8_t group[] = {0x0b, 0x0c};
    uint8_t publish[2 + 2 * 65];
    once_error err;
    size_t i;

    (void)state;
    assert_int_equal(check_request(ok, sizeof(ok)), 0);
    assert_int_equal(check_request(NULL, 0), 0);
    assert_int_equal(check_request(unknown, sizeof(unknown)),
                     -ONCE_ERR_MALFORMED);
    assert_int_equal(check_request(user, sizeof(user)), 0);
    assert_int_equal(check_request(dirty_user, sizeof(dirty_user)),
                     -ONCE_ERR_INVALID_TEXT);
    assert_int_equal(check_request(user_varint, sizeof(user_varint)),
                     -ONCE_ERR_MALFORMED);
    assert_int_equal(check_request(twice, sizeof(twice)),
                     -ONCE_ERR_MALFORMED);
    assert_int_equal(check_request(wrong_type, sizeof(wrong_type)),
                     -ONCE_ERR_MALFORMED);
    assert_int_equal(check_request(cut, sizeof(cut)), -ONCE_ERR_MALFORMED);
    assert_int_equal(check_request(dirty, sizeof(dirty)),
                     -ONCE_ERR_INVALID_TEXT);
    /* A fault of structure wins over dirty text, wherever it is: after
     * INVALID_TEXT the bytes are known to be safe to decode. */
    assert_int_equal(check_request(dirty_then_unknown,
                                   sizeof(dirty_then_unknown)),
                     -ONCE_ERR_MALFORMED);
    assert_int_equal(check_request(group, sizeof(group)),
                     -ONCE_ERR_MALFORMED);

    /* 64 empty disclosures pass; the 65th is counted before decoding. */
    publish[0] = 0x18; /* want_proof */
    publish[1] = 1;
    for (i = 0; i < 65; i++) {
        publish[2 + 2 * i] = 0x12;
        publish[3 + 2 * i] = 0;
    }
    assert_int_equal(wire_check(publish, sizeof(publish) - 2, &wire_publish,
                                &err), 0);
    assert_int_equal(wire_check(publish, sizeof(publish), &wire_publish,
                                &err), -ONCE_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "more than 64 disclosures"));
    /* Nested: a disclosure's name is text. */
    {
        static const uint8_t nested[] = {0x12, 3, 0x12, 1, 0x00};

        assert_int_equal(wire_check(nested, sizeof(nested), &wire_publish,
                                    &err), -ONCE_ERR_INVALID_TEXT);
        assert_non_null(strstr(err.message, "Disclosure's name"));
    }
}

/* libonce refuses dirty text before it signs or sends anything: no broker
 * listens on this endpoint, and the call returns at once. */
static void test_client_refuses_locally(void **state)
{
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    once_keypair kp, broker;
    once_client *c = NULL;
    once_record *r = NULL;
    once_error err;

    (void)state;
    assert_int_equal(once_keypair_generate(&kp), 0);
    assert_int_equal(once_keypair_generate(&broker), 0);
    memcpy(broker_pk, broker.public_key, sizeof(broker_pk));
    assert_int_equal(once_client_open(&c, "ipc:///nonexistent/once-test",
                                      "tax\x1b", &kp, broker_pk, NULL, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_int_equal(once_client_open(&c, "ipc:///nonexistent/once-test",
                                      "tax", &kp, broker_pk, NULL, &err), 0);
    assert_int_equal(once_client_request(c, "business-licence",
                                         "91350100M000100Y43", "tax",
                                         "A-1\t2026\tGRANTED\n", 0, &r, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_non_null(strstr(err.message, "case id"));
    assert_int_equal(once_client_request(c, "business-licence",
                                         "91350100M000100Y43", "tax\xff",
                                         "A-1", 0, &r, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_int_equal(once_client_request(c, "business\xc2\x85",
                                         "91350100M000100Y43", "tax", "A-1",
                                         0, &r, &err),
                     -ONCE_ERR_INVALID_TEXT);
    assert_null(r);
    once_client_close(c);
    once_keypair_wipe(&kp);
    once_keypair_wipe(&broker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_text),
        cmocka_unit_test(test_wire_shapes),
        cmocka_unit_test(test_client_refuses_locally),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
