/*
 * test_export_text.c - the text an auditor is handed, parsed with known
 * answers: the fields (lines, decimals, base64) of text_fields.c, the
 * tlog-proof of `once-audit prove` and `check-proof`, and keys.txt.
 *
 * The fuzz targets (tests/fuzz) show that these parsers agree with their
 * writers and do not crash; they cannot show that a parser accepts what the
 * formats say and refuses the rest. These tests pin each rule down with
 * inputs written out by hand, among them the ones the fuzzers found (a byte
 * of 0x80 or more that libsodium 1.0.18 reads as the base64 digit '/', a NUL
 * byte in keys.txt), so that a rule dropped later fails here by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "export_keys.h"
#include "once/once.h"
#include "text_fields.h"
#include "tlog_proof.h"

/* A literal and its length, NUL bytes inside it included. */
#define BYTES(s) s, sizeof(s) - 1

typedef struct sample {
    const char *text;
    size_t len;
} sample;

/* ------------------------------------------------------------------------
 * text_fields.c
 * ---------------------------------------------------------------------- */

static void test_next_line_keeps_nul_and_needs_newline(void **state)
{
    static const char text[] = "one\n\ntw\0o\nno newline";
    const char *p = text, *end = text + sizeof(text) - 1, *line;
    size_t len;

    (void)state;
    assert_int_equal(text_next_line(&p, end, &line, &len), 0);
    assert_ptr_equal(line, text);
    assert_int_equal(len, 3);
    assert_int_equal(text_next_line(&p, end, &line, &len), 0);
    assert_int_equal(len, 0);
    /* The NUL is a byte of the line, not its end. */
    assert_int_equal(text_next_line(&p, end, &line, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(line, "tw\0o", 4);
    /* A last line without its newline is not a line, and *p stays. */
    assert_int_equal(text_next_line(&p, end, &line, &len), -1);
    assert_ptr_equal(p, text + 10);
    assert_int_equal(text_next_line(&p, p, &line, &len), -1);
}

static void test_parse_u64_one_spelling(void **state)
{
    static const sample refused[] = {
        {BYTES("")},        {BYTES("00")},
        {BYTES("01")},      {BYTES("-1")},
        {BYTES("+1")},      {BYTES(" 1")},
        {BYTES("1 ")},      {BYTES("1a")},
        {BYTES("0x10")},    {BYTES("1\0")},
        {BYTES("18446744073709551616")}, /* UINT64_MAX + 1 */
        {BYTES("18446744073709551620")},
        {BYTES("99999999999999999999")},
        {BYTES("184467440737095516150")},
    };
    uint64_t v;
    size_t i;

    (void)state;
    assert_int_equal(text_parse_u64(BYTES("0"), &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(text_parse_u64(BYTES("10"), &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(text_parse_u64(BYTES("18446744073709551615"), &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(text_parse_u64(BYTES("18446744073709551609"), &v), 0);
    assert_true(v == UINT64_MAX - 6);
    /* Exactly len bytes: what follows is not read. */
    assert_int_equal(text_parse_u64("1234", 2, &v), 0);
    assert_int_equal(v, 12);
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        v = 77;
        if (text_parse_u64(refused[i].text, refused[i].len, &v) != -1)
            fail_msg("accepted \"%.*s\"", (int)refused[i].len,
                     refused[i].text);
        assert_int_equal(v, 77);
    }
}

static void test_base64_rfc4648_vectors(void **state)
{
    static const struct {
        const char *plain, *encoded;
    } vectors[] = {
        {"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},
        {"foo", "Zm9v"},   {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    uint8_t out[8];
    size_t i, len, n;

    (void)state;
    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        len = strlen(vectors[i].plain);
        n = 99;
        assert_int_equal(text_base64_decode(out, len, vectors[i].encoded,
                                            strlen(vectors[i].encoded), &n),
                         0);
        assert_int_equal(n, len);
        assert_memory_equal(out, vectors[i].plain, len);
        /* One byte short of room is refused, not cut. */
        if (len > 0)
            assert_int_equal(text_base64_decode(out, len - 1,
                                                vectors[i].encoded,
                                                strlen(vectors[i].encoded),
                                                &n),
                             -1);
    }
    /* '+' and '/' are the last two digits of the alphabet. */
    assert_int_equal(text_base64_decode(out, sizeof(out), BYTES("+/+/"), &n),
                     0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void test_base64_refuses_other_spellings(void **state)
{
    static const sample refused[] = {
        {BYTES("Zg")},         /* padding left out */
        {BYTES("Zg=")},        {BYTES("Zg===")},
        {BYTES("Zm8")},        {BYTES("Zm8==")},
        {BYTES("Zh==")},       /* leftover bits 0001: also "f" otherwise */
        {BYTES("Zm9=")},       /* leftover bits 01 */
        {BYTES("=")},          {BYTES("====")},
        {BYTES("Zg==Zg==")},   /* padding before the end */
        {BYTES(" Zg==")},      {BYTES("Zg== ")},
        {BYTES("Zg==\n")},     {BYTES("Zm9v\r")},
        {BYTES("Zg\0=")},      {BYTES("Zm9v\0")},
        {BYTES("Zm-_")},       /* the URL-safe alphabet */
        /* libsodium 1.0.18 decodes every byte from 0x80 up as '/', so
         * these would be second spellings of "////". */
        {BYTES("///\xff")},    {BYTES("\x80///")},
        {BYTES("//\xaf/")},
    };
    uint8_t out[16];
    size_t i, n;

    (void)state;
    assert_int_equal(text_base64_decode(out, sizeof(out), BYTES("////"), &n),
                     0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xff\xff\xff", 3);
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (text_base64_decode(out, sizeof(out), refused[i].text,
                               refused[i].len, &n) != -1)
            fail_msg("accepted refused[%zu] \"%.*s\"", i,
                     (int)refused[i].len, refused[i].text);
}

/* ------------------------------------------------------------------------
 * tlog_proof.c
 * ---------------------------------------------------------------------- */

#define HEADER "c2sp.org/tlog-proof@v1\n"
#define HASH_11 "ERERERERERERERERERERERERERERERERERERERERERE=" /* 32 x 0x11 */
#define HASH_FF "//////////////////////////////////////////8=" /* 32 x 0xff */
#define NOTE "once.example.gov/log\n5\n" HASH_11 "\n\n\xe2\x80\x94 sig\n"

/* What once-audit prove writes for leaf "leaf" at index 5 with two proof
 * hashes, spelled out from the format of https://c2sp.org/tlog-proof. */
static const char full_proof[] = HEADER
    "extra bGVhZg==\n"
    "index 5\n" HASH_11 "\n" HASH_FF "\n"
    "\n" NOTE;

static void test_proof_parse_known_file(void **state)
{
    merkle_hash expected;
    tlog_proof p;
    once_error err;

    (void)state;
    assert_int_equal(tlog_proof_parse(BYTES(full_proof), &p, &err), 0);
    assert_true(p.has_extra);
    assert_int_equal(p.extra_len, 4);
    assert_memory_equal(p.extra, "leaf", 4);
    assert_int_equal(p.index, 5);
    assert_int_equal(p.nhashes, 2);
    memset(expected, 0x11, sizeof(expected));
    assert_memory_equal(p.hashes[0], expected, sizeof(expected));
    memset(expected, 0xff, sizeof(expected));
    assert_memory_equal(p.hashes[1], expected, sizeof(expected));
    /* The checkpoint is everything after the blank line, in place. */
    assert_ptr_equal(p.note, full_proof + sizeof(full_proof) - sizeof(NOTE));
    assert_int_equal(p.note_len, sizeof(NOTE) - 1);
    tlog_proof_clear(&p);
    assert_null(p.extra);
}

static void expect_format(const tlog_proof *p, const char *text, size_t len)
{
    char *out;
    size_t out_len;

    assert_int_equal(tlog_proof_format(p, &out, &out_len, NULL), 0);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, text, len);
    free(out);
}

static void test_proof_format_known_files(void **state)
{
    static const char bare[] = HEADER "index 0\n\n" NOTE;
    static const char empty_extra[] = HEADER "extra \nindex 7\n\n";
    tlog_proof p;

    (void)state;
    memset(&p, 0, sizeof(p));
    p.has_extra = true;
    p.extra = (uint8_t *)"leaf";
    p.extra_len = 4;
    p.index = 5;
    memset(p.hashes[0], 0x11, MERKLE_HASH_BYTES);
    memset(p.hashes[1], 0xff, MERKLE_HASH_BYTES);
    p.nhashes = 2;
    p.note = NOTE;
    p.note_len = sizeof(NOTE) - 1;
    expect_format(&p, BYTES(full_proof));
    /* No extra line without extra data, none of the proof lines without
     * hashes: a leaf alone in its tree. */
    p.has_extra = false;
    p.index = 0;
    p.nhashes = 0;
    expect_format(&p, BYTES(bare));
    /* Empty extra data still has its line, and an empty note is the end. */
    p.has_extra = true;
    p.extra_len = 0;
    p.index = 7;
    p.note_len = 0;
    expect_format(&p, BYTES(empty_extra));
    assert_int_equal(tlog_proof_parse(BYTES(empty_extra), &p, NULL), 0);
    assert_true(p.has_extra);
    assert_int_equal(p.extra_len, 0);
    assert_int_equal(p.index, 7);
    assert_int_equal(p.note_len, 0);
    tlog_proof_clear(&p);
}

static void test_proof_refuses_malformed(void **state)
{
    static const sample refused[] = {
        {BYTES("")},
        {BYTES("c2sp.org/tlog-proof@v1")},
        {BYTES("c2sp.org/tlog-proof@v2\nindex 0\n\n" NOTE)},
        {BYTES("c2sp.org/tlog-proof@v1\r\nindex 0\n\n" NOTE)},
        {BYTES("c2sp.org/tlog-proof\nindex 0\n\n" NOTE)},
        {BYTES(HEADER "\n" NOTE)},
        {BYTES(HEADER "index 01\n\n" NOTE)},
        {BYTES(HEADER "index -1\n\n" NOTE)},
        {BYTES(HEADER "index \n\n" NOTE)},
        {BYTES(HEADER "index  5\n\n" NOTE)},
        {BYTES(HEADER "index 5 \n\n" NOTE)},
        {BYTES(HEADER "Index 5\n\n" NOTE)},
        {BYTES(HEADER "index5\n\n" NOTE)},
        {BYTES(HEADER "index 18446744073709551616\n\n" NOTE)},
        {BYTES(HEADER "extra bGVhZg\nindex 5\n\n" NOTE)},
        {BYTES(HEADER "extra bGVhZg==\nextra bGVhZg==\nindex 5\n\n" NOTE)},
        {BYTES(HEADER "extra bGVhZg==\n\n" NOTE)},
        /* The extra line comes before the index line or not at all. */
        {BYTES(HEADER "index 5\nextra bGVhZg==\n\n" NOTE)},
        {BYTES(HEADER "index 5\nEREREREREREREREREREREREREREREREREREREREREQ==\n"
                      "\n" NOTE)}, /* 31 bytes */
        {BYTES(HEADER "index 5\nERERERERERERERERERERERERERERERERERERERERERER\n"
                      "\n" NOTE)}, /* 33 bytes */
        {BYTES(HEADER "index 5\n\xff/////////////////////////////////////////"
                      "8=\n\n" NOTE)},
        {BYTES(HEADER "index 5\n" HASH_11 "\r\n\n" NOTE)},
        {BYTES(HEADER "index 5\n" HASH_11 "\n")}, /* no blank line */
        {BYTES(HEADER "index 5\n")},
        {BYTES(HEADER "extra bGVhZg==\n")},
    };
    once_error err;
    tlog_proof p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (tlog_proof_parse(refused[i].text, refused[i].len, &p, &err) !=
            -ONCE_ERR_MALFORMED)
            fail_msg("refused[%zu] not refused as malformed", i);
        assert_true(err.message[0] != '\0');
        /* Emptied, so that the extra data parsed before the fault is
         * freed (the sanitizer build sees a leak otherwise). */
        assert_null(p.extra);
        assert_false(p.has_extra);
        assert_int_equal(p.nhashes, 0);
    }
}

/* A proof of n hashes of 0x11 with an empty note. */
static char *proof_of_hashes(size_t n, size_t *len)
{
    static const char index_line[] = HEADER "index 0\n";
    static const char hash_line[] = HASH_11 "\n";
    char *text = malloc(sizeof(index_line) + n * (sizeof(hash_line) - 1) + 1);
    size_t i;

    assert_non_null(text);
    memcpy(text, index_line, sizeof(index_line) - 1);
    *len = sizeof(index_line) - 1;
    for (i = 0; i < n; i++) {
        memcpy(text + *len, hash_line, sizeof(hash_line) - 1);
        *len += sizeof(hash_line) - 1;
    }
    text[(*len)++] = '\n';
    return text;
}

static void test_proof_bounds(void **state)
{
    tlog_proof p;
    once_error err;
    size_t len;
    char *text = proof_of_hashes(MERKLE_MAX_PROOF, &len), *out;

    (void)state;
    assert_int_equal(tlog_proof_parse(text, len, &p, NULL), 0);
    assert_int_equal(p.nhashes, MERKLE_MAX_PROOF);
    free(text);
    text = proof_of_hashes(MERKLE_MAX_PROOF + 1, &len);
    assert_int_equal(tlog_proof_parse(text, len, &p, &err),
                     -ONCE_ERR_MALFORMED);
    free(text);
    /* A file over the limit is refused before a byte of it is read. */
    text = malloc((size_t)TLOG_PROOF_MAX_BYTES + 1);
    assert_non_null(text);
    memcpy(text, full_proof, sizeof(full_proof) - 1);
    assert_int_equal(tlog_proof_parse(text, (size_t)TLOG_PROOF_MAX_BYTES + 1,
                                      &p, &err),
                     -ONCE_ERR_TOO_LARGE);
    free(text);
    /* The writer refuses what the reader would refuse; it checks sizes
     * before it reads, so the pointers need not cover them. */
    memset(&p, 0, sizeof(p));
    p.nhashes = MERKLE_MAX_PROOF + 1;
    assert_int_equal(tlog_proof_format(&p, &out, &len, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    p.nhashes = 0;
    p.has_extra = true;
    p.extra = (uint8_t *)"x";
    p.extra_len = (size_t)TLOG_PROOF_MAX_BYTES + 1;
    assert_int_equal(tlog_proof_format(&p, &out, &len, &err),
                     -ONCE_ERR_TOO_LARGE);
    p.extra_len = 1;
    p.note = "x";
    p.note_len = (size_t)TLOG_PROOF_MAX_BYTES + 1;
    assert_int_equal(tlog_proof_format(&p, &out, &len, &err),
                     -ONCE_ERR_TOO_LARGE);
}

/* ------------------------------------------------------------------------
 * export_keys.c
 * ---------------------------------------------------------------------- */

/* The public key 00 01 02 .. 1f. */
#define KEY_HEX "000102030405060708090a0b0c0d0e0f" \
                "101112131415161718191a1b1c1d1e1f"
#define KEY_HEX_UPPER "000102030405060708090A0B0C0D0E0F" \
                      "101112131415161718191A1B1C1D1E1F"

static void expect_sample_key(const export_key *k, const char *id)
{
    size_t i;

    assert_string_equal(k->id, id);
    for (i = 0; i < ONCE_PUBLIC_KEY_BYTES; i++)
        assert_int_equal(k->public_key[i], i);
}

static void test_keys_line_fields(void **state)
{
    static const char active[] =
        "tax-bureau " KEY_HEX " 1700000000000 0 active Tax  Bureau, No. 1 ";
    static const char suspended[] =
        "customs " KEY_HEX " 1 18446744073709551615 suspended";
    export_key k;

    (void)state;
    assert_int_equal(export_keys_line_parse(BYTES(active), &k, NULL), 0);
    expect_sample_key(&k, "tax-bureau");
    assert_true(k.valid_from == 1700000000000ULL);
    assert_int_equal(k.valid_until, 0);
    assert_false(k.suspended);
    /* The name is the rest of the line as it is, spaces inside and after
     * it included, and points into the line. */
    assert_ptr_equal(k.name, active + sizeof(active) - 1 - 19);
    assert_int_equal(k.name_len, 19);
    assert_memory_equal(k.name, "Tax  Bureau, No. 1 ", 19);
    assert_int_equal(export_keys_line_parse(BYTES(suspended), &k, NULL), 0);
    expect_sample_key(&k, "customs");
    assert_int_equal(k.valid_from, 1);
    assert_true(k.valid_until == UINT64_MAX);
    assert_true(k.suspended);
    assert_int_equal(k.name_len, 0);
}

static void test_keys_line_slack_of_hand_written_files(void **state)
{
    /* Each is the line "police KEY 5 0 active Police" as a person might
     * type it: the same key. */
    static const sample same[] = {
        {BYTES("police\t" KEY_HEX "\t5\t0\tactive\tPolice")},
        {BYTES("  police   " KEY_HEX "  5 \t 0   active \t Police")},
        {BYTES("police " KEY_HEX " 5 0 active Police\r")},
        {BYTES("police " KEY_HEX_UPPER " 5 0 active Police")},
    };
    export_key k;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        if (export_keys_line_parse(same[i].text, same[i].len, &k, NULL) != 0)
            fail_msg("same[%zu] refused", i);
        expect_sample_key(&k, "police");
        assert_int_equal(k.valid_from, 5);
        assert_int_equal(k.valid_until, 0);
        assert_false(k.suspended);
        assert_int_equal(k.name_len, 6);
        assert_memory_equal(k.name, "Police", 6);
    }
}

static void test_keys_line_refusals(void **state)
{
    static const struct {
        const char *text;
        size_t len;
        const char *reason;
    } refused[] = {
        {BYTES(""), "no valid department id"},
        {BYTES(" \t "), "no valid department id"},
        {BYTES("Tax " KEY_HEX " 1 0 active"), "no valid department id"},
        {BYTES("-tax " KEY_HEX " 1 0 active"), "no valid department id"},
        {BYTES("tax/1 " KEY_HEX " 1 0 active"), "no valid department id"},
        /* A NUL must not cut "tax\0evil" down to the department "tax". */
        {BYTES("tax\0evil " KEY_HEX " 1 0 active"), "no valid department id"},
        {BYTES("tax"), "no public key"},
        {BYTES("tax " KEY_HEX), "valid-from"},
        {BYTES("tax " KEY_HEX " -1 0 active"), "valid-from"},
        {BYTES("tax " KEY_HEX " +1 0 active"), "valid-from"},
        {BYTES("tax " KEY_HEX " 01 0 active"), "valid-from"},
        {BYTES("tax " KEY_HEX " 1.5 0 active"), "valid-from"},
        {BYTES("tax " KEY_HEX " 18446744073709551616 0 active"),
         "valid-from"},
        {BYTES("tax " KEY_HEX " 1 -1 suspended"), "valid-until"},
        {BYTES("tax " KEY_HEX " 1 00 active"), "valid-until"},
        {BYTES("tax " KEY_HEX " 1"), "valid-until"},
        {BYTES("tax " KEY_HEX " 1 0"), "neither active nor suspended"},
        {BYTES("tax " KEY_HEX " 1 0 Active"), "neither active nor suspended"},
        {BYTES("tax " KEY_HEX " 1 0 revoked"), "neither active nor suspended"},
        {BYTES("tax " KEY_HEX " 1 0 active Tax\x01"), "control character"},
        {BYTES("tax " KEY_HEX " 1 0 active Tax\x1b[2J"), "control character"},
        {BYTES("tax " KEY_HEX " 1 0 active Tax\x7f"), "control character"},
        {BYTES("tax " KEY_HEX " 1 0 active Tax\tBureau"), "control character"},
        {BYTES("tax " KEY_HEX " 1 0 active Tax\0"), "control character"},
        /* Only one "\r" is a line end. */
        {BYTES("tax " KEY_HEX " 1 0 active Tax\r\r"), "control character"},
        {BYTES("tax " KEY_HEX " 1 0 active Tax\rBureau"), "control character"},
        {BYTES("tax 000102 1 0 active"), "bad public key"},
        {BYTES("tax " KEY_HEX "00 1 0 active"), "bad public key"},
        {BYTES("tax " "g00102030405060708090a0b0c0d0e0f"
               "101112131415161718191a1b1c1d1e1f 1 0 active"),
         "bad public key"},
        {BYTES("tax " "00\0" "102030405060708090a0b0c0d0e0f"
               "101112131415161718191a1b1c1d1e1f 1 0 active"),
         "bad public key"},
        /* A bad key on a line malformed elsewhere is reported as
         * malformed, the first fault from the left. */
        {BYTES("tax 0001 01 0 active"), "valid-from"},
    };
    once_error err;
    export_key k;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (export_keys_line_parse(refused[i].text, refused[i].len, &k,
                                   &err) != -ONCE_ERR_MALFORMED)
            fail_msg("refused[%zu] accepted", i);
        if (strstr(err.message, refused[i].reason) == NULL)
            fail_msg("refused[%zu]: \"%s\" does not say \"%s\"", i,
                     err.message, refused[i].reason);
    }
}

static void test_keys_line_department_id_rule(void **state)
{
    char line[2 * ONCE_MAX_NAME + 128];
    export_key k;
    int n;

    (void)state;
    /* '.', '_' and '-' after the first character; up to ONCE_MAX_NAME. */
    n = snprintf(line, sizeof(line), "0a.b_c-9 %s 1 0 active", KEY_HEX);
    assert_int_equal(export_keys_line_parse(line, (size_t)n, &k, NULL), 0);
    assert_string_equal(k.id, "0a.b_c-9");
    n = snprintf(line, sizeof(line), "%.*s %s 1 0 active", ONCE_MAX_NAME,
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                 "abcdefghijklmnopqrstuvwxyz",
                 KEY_HEX);
    assert_int_equal(export_keys_line_parse(line, (size_t)n, &k, NULL), 0);
    assert_int_equal(strlen(k.id), ONCE_MAX_NAME);
    n = snprintf(line, sizeof(line), "%.*s %s 1 0 active", ONCE_MAX_NAME + 1,
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                 "abcdefghijklmnopqrstuvwxyz",
                 KEY_HEX);
    assert_int_equal(export_keys_line_parse(line, (size_t)n, &k, NULL),
                     -ONCE_ERR_MALFORMED);
    n = snprintf(line, sizeof(line), ".tax %s 1 0 active", KEY_HEX);
    assert_int_equal(export_keys_line_parse(line, (size_t)n, &k, NULL),
                     -ONCE_ERR_MALFORMED);
}

static void sample_key(export_key *k, const char *id, const char *name)
{
    size_t i;

    memset(k, 0, sizeof(*k));
    strcpy(k->id, id);
    for (i = 0; i < ONCE_PUBLIC_KEY_BYTES; i++)
        k->public_key[i] = (uint8_t)i;
    k->name = name;
    k->name_len = strlen(name);
}

static void test_keys_line_format(void **state)
{
    static const char expected[] =
        "tax-bureau " KEY_HEX " 1700000000000 0 active Tax Bureau\n";
    char out[256];
    export_key k, back;
    once_error err;
    int n;

    (void)state;
    sample_key(&k, "tax-bureau", "Tax Bureau");
    k.valid_from = 1700000000000ULL;
    assert_int_equal(export_keys_line_format(&k, out, sizeof(out), NULL),
                     (int)sizeof(expected) - 1);
    assert_string_equal(out, expected);
    /* Room for the line and its NUL exactly, then one byte less. */
    assert_int_equal(export_keys_line_format(&k, out, sizeof(expected),
                                             NULL),
                     (int)sizeof(expected) - 1);
    assert_int_equal(export_keys_line_format(&k, out, sizeof(expected) - 1,
                                             &err),
                     -ONCE_ERR_TOO_LARGE);
    /* A control character in a stored name cannot start another line. */
    sample_key(&k, "customs", "Cus\ntoms\x1b\x7f");
    k.valid_from = 2;
    k.valid_until = 3;
    k.suspended = true;
    n = export_keys_line_format(&k, out, sizeof(out), NULL);
    assert_string_equal(out, "customs " KEY_HEX " 2 3 suspended Cus?toms??\n");
    assert_int_equal(n, (int)strlen(out));
    assert_int_equal(export_keys_line_parse(out, (size_t)n - 1, &back, NULL),
                     0);
    expect_sample_key(&back, "customs");
    assert_true(back.suspended);
    assert_int_equal(back.valid_from, 2);
    assert_int_equal(back.valid_until, 3);
    assert_int_equal(back.name_len, 10);
    assert_memory_equal(back.name, "Cus?toms??", 10);
    /* Only a department id is written. */
    sample_key(&k, "Customs", "");
    assert_int_equal(export_keys_line_format(&k, out, sizeof(out), &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    sample_key(&k, "", "");
    assert_int_equal(export_keys_line_format(&k, out, sizeof(out), &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
}

/* What export_keys_parse reported, call by call. */
#define WALK_MAX 8

typedef struct walk_call {
    size_t line_number;
    char id[ONCE_MAX_NAME + 1]; /* "" for a problem */
    once_error problem;
} walk_call;

typedef struct walk {
    walk_call calls[WALK_MAX];
    size_t ncalls;
    size_t stop_at_line; /* 0: never stop */
} walk;

static int record_call(void *arg, size_t line_number, const export_key *key,
                       const once_error *problem)
{
    walk *w = arg;
    walk_call *c;

    assert_true(w->ncalls < WALK_MAX);
    assert_true((key == NULL) != (problem == NULL));
    c = &w->calls[w->ncalls++];
    memset(c, 0, sizeof(*c));
    c->line_number = line_number;
    if (key != NULL)
        strcpy(c->id, key->id);
    else
        c->problem = *problem;
    return line_number == w->stop_at_line ? -1234 : 0;
}

/* Walks text into a fresh record that stops the walk at stop_at_line (0:
 * never); returns what export_keys_parse returned. */
static int walk_keys(walk *w, const char *text, size_t len,
                     size_t stop_at_line)
{
    memset(w, 0, sizeof(*w));
    w->stop_at_line = stop_at_line;
    return export_keys_parse(text, len, record_call, w);
}

static void expect_call(const walk *w, size_t i, size_t line_number,
                        const char *id)
{
    assert_true(i < w->ncalls);
    assert_int_equal(w->calls[i].line_number, line_number);
    assert_string_equal(w->calls[i].id, id);
    if (id[0] == '\0')
        assert_true(strncmp(w->calls[i].problem.message, "malformed", 9) ==
                        0 ||
                    strcmp(w->calls[i].problem.message, "bad public key") ==
                        0);
}

/* Comments and empty lines are skipped but counted, every other line is a
 * key or a problem with its number, and the last line needs no newline. */
static const char keys_file[] =
    "# once department keys\n"                                  /* 1 */
    "\n"                                                        /* 2 */
    "tax " KEY_HEX " 1 0 active Tax Bureau\n"                   /* 3 */
    "not a key line\n"                                          /* 4 */
    "cus\0toms " KEY_HEX " 1 0 active\n"                        /* 5 */
    "customs\t" KEY_HEX "\t2\t3\tsuspended\tCustoms\r\n"        /* 6 */
    "#tax " KEY_HEX " 1 0 active commented out\n"               /* 7 */
    "police " KEY_HEX " 4 0 active Police";                     /* 8 */

static void test_keys_walk_reports_every_line(void **state)
{
    char with_newline[sizeof(keys_file)];
    walk w;

    (void)state;
    assert_int_equal(walk_keys(&w, BYTES(keys_file), 0), 0);
    assert_int_equal(w.ncalls, 5);
    expect_call(&w, 0, 3, "tax");
    expect_call(&w, 1, 4, "");
    expect_call(&w, 2, 5, "");
    expect_call(&w, 3, 6, "customs");
    expect_call(&w, 4, 8, "police");
    /* With a newline after its last line, no ninth line. */
    memcpy(with_newline, keys_file, sizeof(keys_file) - 1);
    with_newline[sizeof(keys_file) - 1] = '\n';
    assert_int_equal(walk_keys(&w, with_newline, sizeof(with_newline), 0), 0);
    assert_int_equal(w.ncalls, 5);
    expect_call(&w, 4, 8, "police");
    /* With a NUL after it instead, the NUL is a byte of the name. */
    assert_int_equal(walk_keys(&w, keys_file, sizeof(keys_file), 0), 0);
    assert_int_equal(w.ncalls, 5);
    expect_call(&w, 4, 8, "");
}

static void test_keys_walk_edge_files(void **state)
{
    walk w;

    (void)state;
    assert_int_equal(walk_keys(&w, "", 0, 0), 0);
    assert_int_equal(w.ncalls, 0);
    assert_int_equal(walk_keys(&w, BYTES("\n\n# only comments\n\n"), 0), 0);
    assert_int_equal(w.ncalls, 0);
    /* NUL bytes with no newline after them once made the walk spin. */
    assert_int_equal(walk_keys(&w, BYTES("\0\0\0"), 0), 0);
    assert_int_equal(w.ncalls, 1);
    expect_call(&w, 0, 1, "");
    assert_int_equal(walk_keys(&w, BYTES("\0\n\0\n"), 0), 0);
    assert_int_equal(w.ncalls, 2);
    expect_call(&w, 0, 1, "");
    expect_call(&w, 1, 2, "");
    /* A negative return stops the walk and comes back. */
    assert_int_equal(walk_keys(&w, BYTES(keys_file), 4), -1234);
    assert_int_equal(w.ncalls, 2);
    expect_call(&w, 1, 4, "");
}

/* A file saved with "\r\n" line ends: the line parser drops the "\r", so
 * the walk must take "\r" alone for the empty line it is. */
static void test_keys_walk_crlf_file_with_empty_line(void **state)
{
    static const char crlf_file[] =
        "# keys\r\n"
        "tax " KEY_HEX " 1 0 active Tax\r\n"
        "\r\n"
        "police " KEY_HEX " 4 0 active Police\r\n";
    walk w;

    (void)state;
    assert_int_equal(walk_keys(&w, BYTES(crlf_file), 0), 0);
    assert_int_equal(w.ncalls, 2);
    expect_call(&w, 0, 2, "tax");
    expect_call(&w, 1, 4, "police");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_line_keeps_nul_and_needs_newline),
        cmocka_unit_test(test_parse_u64_one_spelling),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_refuses_other_spellings),
        cmocka_unit_test(test_proof_parse_known_file),
        cmocka_unit_test(test_proof_format_known_files),
        cmocka_unit_test(test_proof_refuses_malformed),
        cmocka_unit_test(test_proof_bounds),
        cmocka_unit_test(test_keys_line_fields),
        cmocka_unit_test(test_keys_line_slack_of_hand_written_files),
        cmocka_unit_test(test_keys_line_refusals),
        cmocka_unit_test(test_keys_line_department_id_rule),
        cmocka_unit_test(test_keys_line_format),
        cmocka_unit_test(test_keys_walk_reports_every_line),
        cmocka_unit_test(test_keys_walk_edge_files),
        cmocka_unit_test(test_keys_walk_crlf_file_with_empty_line),
    };

    if (once_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
