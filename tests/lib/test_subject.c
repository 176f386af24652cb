/*
 * test_subject.c - subject validation: Unified Social Credit Codes
 * (GB 32100) and resident identity numbers (GB 11643).
 *
 * The valid codes and numbers below were computed with a separate Python
 * script from the standards' formulas (weights 3^i mod 31 over the 31
 * character alphabet; ISO 7064 MOD 11-2), not with the code under test, so
 * a wrong weight or alphabet in subject.c cannot make its own tests pass.
 * 91350100M000100Y43 and 11010519491231002X are the examples commonly
 * quoted with the standards; the others are made up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "once/once.h"

static const char *const valid_credit_codes[] = {
    "91350100M000100Y43", "91110108100000019F", "92310115MA1K3RT00F",
    "12100000400012345P", "51110000500000001E", "Y1440300MA5DXXXX01",
    "N2330102MA2GAB12C8", "93441900MA4UQWE7YW", "91110000710931234G",
    "31110000E00001234M", "A1100000MA00JK0L9H",
};

static const char *const valid_resident_ids[] = {
    "11010519491231002X", /* check character 10 */
    "320102200002291235", /* 29 February of a leap year (2000) */
    "440300199912314563",
    "110101202401010019", /* 2024 is a leap year; 1 January anyway */
    "610101190001011234", /* the earliest accepted year */
};

static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A refusal must be INVALID_SUBJECT, and its message must not quote the
 * identifier (messages reach logs; identifiers are personal data). */
static void assert_refused(int rc, const once_error *err, const char *subject)
{
    assert_int_equal(rc, -ONCE_ERR_INVALID_SUBJECT);
    assert_int_equal(err->code, ONCE_ERR_INVALID_SUBJECT);
    assert_true(err->message[0] != '\0');
    if (subject != NULL && strlen(subject) >= 6)
        assert_null(strstr(err->message, subject));
}

static void uscc_valid_codes_pass(void **state)
{
    once_error err;
    size_t i;

    (void)state;
    for (i = 0; i < N(valid_credit_codes); i++) {
        assert_int_equal(once_uscc_validate(valid_credit_codes[i], &err), 0);
        assert_int_equal(once_subject_validate(ONCE_SUBJECT_ENTERPRISE,
                                               valid_credit_codes[i], &err),
                         0);
    }
}

static void uscc_check_char_matches_independent_vectors(void **state)
{
    char check;
    size_t i;

    (void)state;
    for (i = 0; i < N(valid_credit_codes); i++) {
        check = '?';
        assert_int_equal(once_uscc_check_char(valid_credit_codes[i], &check),
                         0);
        assert_int_equal(check, valid_credit_codes[i][17]);
    }
}

static void uscc_every_wrong_check_char_is_refused(void **state)
{
    char code[19];
    once_error err;
    size_t i, j;

    (void)state;
    for (i = 0; i < N(valid_credit_codes); i++) {
        for (j = 0; uscc_alphabet[j] != '\0'; j++) {
            if (uscc_alphabet[j] == valid_credit_codes[i][17])
                continue;
            memcpy(code, valid_credit_codes[i], 19);
            code[17] = uscc_alphabet[j];
            assert_refused(once_uscc_validate(code, &err), &err, code);
            assert_string_equal(err.message,
                                "credit code check character mismatch");
        }
    }
}

static void uscc_single_character_change_is_refused(void **state)
{
    char code[19];
    once_error err;
    size_t pos, j;

    (void)state;
    /* Any one substituted character changes the weighted sum by a nonzero
     * multiple of a weight that is invertible mod 31. */
    for (pos = 0; pos < 17; pos++) {
        for (j = 0; uscc_alphabet[j] != '\0'; j++) {
            memcpy(code, valid_credit_codes[0], 19);
            if (code[pos] == uscc_alphabet[j])
                continue;
            code[pos] = uscc_alphabet[j];
            assert_refused(once_uscc_validate(code, &err), &err, code);
        }
    }
}

static void uscc_wrong_length_is_refused(void **state)
{
    once_error err;

    (void)state;
    assert_refused(once_uscc_validate("91350100M000100Y4", &err), &err, NULL);
    assert_refused(once_uscc_validate("91350100M000100Y433", &err), &err,
                   NULL);
    assert_refused(once_uscc_validate("", &err), &err, NULL);
    assert_refused(once_uscc_validate(NULL, &err), &err, NULL);
}

static void uscc_lowercase_is_refused(void **state)
{
    once_error err;

    (void)state;
    assert_refused(once_uscc_validate("91350100m000100y43", &err), &err,
                   "91350100m000100y43");
}

static void uscc_forbidden_letters_are_refused(void **state)
{
    static const char forbidden[] = "IOSVZ";
    char code[19], check;
    once_error err;
    size_t i;

    (void)state;
    for (i = 0; forbidden[i] != '\0'; i++) {
        memcpy(code, "91350100M000100Y43", 19);
        code[8] = forbidden[i];
        assert_refused(once_uscc_validate(code, &err), &err, code);
        assert_int_equal(once_uscc_check_char(code, &check),
                         -ONCE_ERR_INVALID_SUBJECT);
        /* ... and as the check character itself. */
        memcpy(code, "91350100M000100Y43", 19);
        code[17] = forbidden[i];
        assert_refused(once_uscc_validate(code, &err), &err, code);
    }
}

static void uscc_division_code_must_be_digits(void **state)
{
    once_error err;

    (void)state;
    /* Check character computed by the Python script for these 17. */
    assert_refused(once_uscc_validate("91A50100M000100Y42", &err), &err,
                   "91A50100M000100Y42");
    assert_non_null(strstr(err.message, "digits"));
}

static void resident_id_valid_numbers_pass(void **state)
{
    once_error err;
    char check;
    size_t i;

    (void)state;
    for (i = 0; i < N(valid_resident_ids); i++) {
        assert_int_equal(once_resident_id_validate(valid_resident_ids[i],
                                                   &err), 0);
        assert_int_equal(once_subject_validate(ONCE_SUBJECT_PERSON,
                                               valid_resident_ids[i], &err),
                         0);
        assert_int_equal(once_resident_id_check_char(valid_resident_ids[i],
                                                     &check), 0);
        assert_int_equal(check, valid_resident_ids[i][17]);
    }
}

static void resident_id_wrong_check_digit_is_refused(void **state)
{
    static const char checks[] = "0123456789X";
    char id[19];
    once_error err;
    size_t i, j;

    (void)state;
    for (i = 0; i < N(valid_resident_ids); i++) {
        for (j = 0; checks[j] != '\0'; j++) {
            if (checks[j] == valid_resident_ids[i][17])
                continue;
            memcpy(id, valid_resident_ids[i], 19);
            id[17] = checks[j];
            assert_refused(once_resident_id_validate(id, &err), &err, id);
            assert_string_equal(err.message,
                                "identity number check character mismatch");
        }
    }
}

static void resident_id_lowercase_x_is_refused(void **state)
{
    once_error err;

    (void)state;
    assert_refused(once_resident_id_validate("11010519491231002x", &err), &err,
                   "11010519491231002x");
}

static void resident_id_impossible_dates_are_refused(void **state)
{
    /* Each has a correct check character (from the Python script), so only
     * the date can be what is refused. */
    static const char *const ids[] = {
        "11010120000230001X", /* 30 February */
        "110101190002290011", /* 29 February 1900: not a leap year */
        "440524188001010014", /* 1880, the standard's own example: before 1900 */
    };
    once_error err;
    size_t i;

    (void)state;
    for (i = 0; i < N(ids); i++) {
        assert_refused(once_resident_id_validate(ids[i], &err), &err, ids[i]);
        assert_non_null(strstr(err.message, "birth"));
    }
}

/* A number born on the date `days` from today in China Standard Time, with
 * its check character computed by the library (its formula is checked
 * against independent vectors above). */
static void make_id_born_in(char id[19], int days)
{
    time_t t = time(NULL) + 8 * 3600 + (time_t)days * 86400;
    char text[64];
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(text, sizeof(text), "110101%04d%02d%02d123", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday);
    assert_int_equal(strlen(text), 17);
    memcpy(id, text, 17);
    assert_int_equal(once_resident_id_check_char(id, &id[17]), 0);
    id[18] = '\0';
}

static void resident_id_future_birth_date_is_refused(void **state)
{
    char id[19];
    once_error err;

    (void)state;
    /* Two days ahead: still in the future if midnight passes mid-test. */
    make_id_born_in(id, 2);
    assert_refused(once_resident_id_validate(id, &err), &err, id);
    assert_non_null(strstr(err.message, "future"));
    make_id_born_in(id, 365 * 3);
    assert_refused(once_resident_id_validate(id, &err), &err, id);
    /* Born today (or, across midnight, yesterday) is fine. */
    make_id_born_in(id, 0);
    assert_int_equal(once_resident_id_validate(id, &err), 0);
}

static void resident_id_bad_shape_is_refused(void **state)
{
    once_error err;

    (void)state;
    assert_refused(once_resident_id_validate("11010519491231002", &err), &err,
                   NULL);
    assert_refused(once_resident_id_validate("11010519491231002X1", &err),
                   &err, NULL);
    assert_refused(once_resident_id_validate("1101051949123100AX", &err), &err,
                   NULL);
    assert_refused(once_resident_id_validate("11010519491231002Y", &err), &err,
                   NULL);
    assert_refused(once_resident_id_validate("", &err), &err, NULL);
    assert_refused(once_resident_id_validate(NULL, &err), &err, NULL);
    /* A credit code is not an identity number, and the reverse. */
    assert_refused(once_subject_validate(ONCE_SUBJECT_PERSON,
                                         "91350100M000100Y43", &err),
                   &err, "91350100M000100Y43");
    assert_refused(once_subject_validate(ONCE_SUBJECT_ENTERPRISE,
                                         "11010519491231002X", &err),
                   &err, "11010519491231002X");
}

static void subject_kinds_have_names(void **state)
{
    once_subject_kind kind = ONCE_SUBJECT_UNSPECIFIED;
    once_error err;

    (void)state;
    assert_string_equal(once_subject_kind_name(ONCE_SUBJECT_ENTERPRISE),
                        "enterprise");
    assert_string_equal(once_subject_kind_name(ONCE_SUBJECT_PERSON), "person");
    assert_int_equal(once_subject_kind_parse("enterprise", &kind), 0);
    assert_int_equal(kind, ONCE_SUBJECT_ENTERPRISE);
    assert_int_equal(once_subject_kind_parse("person", &kind), 0);
    assert_int_equal(kind, ONCE_SUBJECT_PERSON);
    assert_int_equal(once_subject_kind_parse("Person", &kind),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_subject_kind_parse("", &kind),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_subject_validate(ONCE_SUBJECT_UNSPECIFIED,
                                           "91350100M000100Y43", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uscc_valid_codes_pass),
        cmocka_unit_test(uscc_check_char_matches_independent_vectors),
        cmocka_unit_test(uscc_every_wrong_check_char_is_refused),
        cmocka_unit_test(uscc_single_character_change_is_refused),
        cmocka_unit_test(uscc_wrong_length_is_refused),
        cmocka_unit_test(uscc_lowercase_is_refused),
        cmocka_unit_test(uscc_forbidden_letters_are_refused),
        cmocka_unit_test(uscc_division_code_must_be_digits),
        cmocka_unit_test(resident_id_valid_numbers_pass),
        cmocka_unit_test(resident_id_wrong_check_digit_is_refused),
        cmocka_unit_test(resident_id_lowercase_x_is_refused),
        cmocka_unit_test(resident_id_impossible_dates_are_refused),
        cmocka_unit_test(resident_id_future_birth_date_is_refused),
        cmocka_unit_test(resident_id_bad_shape_is_refused),
        cmocka_unit_test(subject_kinds_have_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
