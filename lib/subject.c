/*
 * subject.c - validation of the identifiers records are about.
 *
 * A record's subject is the enterprise's Unified Social Credit Code or the
 * person's resident identity number. Both carry a check character, so a
 * mistyped identifier is refused at the department that typed it instead of
 * silently creating a record nobody will ever find.
 *
 * Unified Social Credit Code, GB 32100-2015: 18 characters from the 31
 * character alphabet 0-9 A-Z without I, O, S, V and Z (letters easily read
 * as digits). Position 1 is the registration authority, 2 the category of
 * the organization, 3-8 the administrative division code (GB/T 2260, six
 * digits), 9-17 the organization's identifier, 18 the check character:
 *
 *     sum   = sum over i = 0..16 of value(c[i]) * (3^i mod 31)
 *     check = alphabet[(31 - sum mod 31) mod 31]
 *
 * The tables of authority and category codes are not checked: they have
 * grown by amendments since 2015 (for example rural collective economic
 * organizations), so a table here would refuse codes issued after it was
 * written, while the check character already catches transcription errors.
 * Lowercase letters are refused: the standard's alphabet is uppercase, and
 * accepting both would give one enterprise two spellings as a record key.
 *
 * Resident identity number, GB 11643-1999: 17 digits and a check character
 * (ISO 7064 MOD 11-2). Positions 1-6 are the address code, 7-14 the birth
 * date YYYYMMDD, 15-17 a sequence number, 18 the check:
 *
 *     sum   = sum over i = 0..16 of digit(c[i]) * (2^(17-i) mod 11)
 *     check = (12 - sum mod 11) mod 11, written 'X' for 10
 *
 * The birth date must exist (leap years included), be no earlier than 1900
 * (the 18-digit number dates from 1999, so anyone born before 1900 is out of
 * scope) and not be in the future. "Today" is the date in China Standard
 * Time (UTC+8, no daylight saving), whatever the host's time zone, so the
 * answer for a number does not depend on where the check runs. Only an
 * uppercase 'X' is accepted, for the same reason as above: one person, one
 * spelling.
 *
 * Error messages say what is wrong and never quote the identifier: they end
 * up in logs, and identifiers are personal data.
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "once/once.h"

#define USCC_LENGTH 18
#define RESIDENT_ID_LENGTH 18

static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
static const int uscc_weights[17] = {1,  3,  9,  27, 19, 26, 16, 17, 20,
                                     29, 25, 13, 8,  24, 10, 30, 28};
static const int resident_id_weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6,
                                            3, 7, 9, 10, 5, 8, 4, 2};

/* Value of c in the USCC alphabet, or -1 when c is not in it. */
static int uscc_value(char c)
{
    const char *p;

    if (c == '\0')
        return -1;
    p = strchr(uscc_alphabet, c);
    return p == NULL ? -1 : (int)(p - uscc_alphabet);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int once_uscc_check_char(const char *first17, char *check)
{
    int sum = 0, i, v;

    if (first17 == NULL || check == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    for (i = 0; i < 17; i++) {
        if ((v = uscc_value(first17[i])) < 0)
            return -ONCE_ERR_INVALID_SUBJECT;
        sum += v * uscc_weights[i];
    }
    *check = uscc_alphabet[(31 - sum % 31) % 31];
    return 0;
}

int once_uscc_validate(const char *code, once_error *err)
{
    char check;
    int i;

    if (code == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "credit code is missing");
    if (strnlen(code, USCC_LENGTH + 1) != USCC_LENGTH)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "credit code must be %d characters",
                              USCC_LENGTH);
    for (i = 0; i < USCC_LENGTH; i++) {
        if (uscc_value(code[i]) < 0)
            return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                                  "credit code character %d is not one of "
                                  "0-9 A-Z without I O S V Z (uppercase)",
                                  i + 1);
    }
    for (i = 2; i < 8; i++) {
        if (!is_digit(code[i]))
            return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                                  "credit code characters 3-8 must be digits "
                                  "(administrative division code)");
    }
    once_uscc_check_char(code, &check);
    if (code[17] != check)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "credit code check character mismatch");
    return 0;
}

int once_resident_id_check_char(const char *first17, char *check)
{
    int sum = 0, i, v;

    if (first17 == NULL || check == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    for (i = 0; i < 17; i++) {
        if (!is_digit(first17[i]))
            return -ONCE_ERR_INVALID_SUBJECT;
        sum += (first17[i] - '0') * resident_id_weights[i];
    }
    v = (12 - sum % 11) % 11;
    *check = v == 10 ? 'X' : (char)('0' + v);
    return 0;
}

static int digits_value(const char *s, int n)
{
    int v = 0;

    while (n-- > 0)
        v = v * 10 + (*s++ - '0');
    return v;
}

static bool is_leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Today's date in China Standard Time as YYYYMMDD. */
static int today_in_china(void)
{
    time_t now = time(NULL) + 8 * 3600;
    struct tm tm;

    gmtime_r(&now, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

/* 0 when the 8 digits at p are a real date from 1900 to today. */
static int check_birth_date(const char *p, once_error *err)
{
    static const int days_in_month[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    int year = digits_value(p, 4);
    int month = digits_value(p + 4, 2);
    int day = digits_value(p + 6, 2);
    int last_day;

    if (year < 1900)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number birth year is before 1900");
    if (month < 1 || month > 12)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number birth month is not 01-12");
    last_day = days_in_month[month - 1];
    if (month == 2 && is_leap_year(year))
        last_day = 29;
    if (day < 1 || day > last_day)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number birth day does not exist in "
                              "its month");
    if (year * 10000 + month * 100 + day > today_in_china())
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number birth date is in the future");
    return 0;
}

int once_resident_id_validate(const char *id, once_error *err)
{
    char check;
    int i, rc;

    if (id == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number is missing");
    if (strnlen(id, RESIDENT_ID_LENGTH + 1) != RESIDENT_ID_LENGTH)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number must be %d characters",
                              RESIDENT_ID_LENGTH);
    for (i = 0; i < 17; i++) {
        if (!is_digit(id[i]))
            return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                                  "identity number characters 1-17 must be "
                                  "digits");
    }
    if (!is_digit(id[17]) && id[17] != 'X')
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number check character must be a "
                              "digit or an uppercase X");
    if ((rc = check_birth_date(id + 6, err)) < 0)
        return rc;
    once_resident_id_check_char(id, &check);
    if (id[17] != check)
        return once_error_set(err, ONCE_ERR_INVALID_SUBJECT,
                              "identity number check character mismatch");
    return 0;
}

int once_subject_validate(once_subject_kind kind, const char *subject,
                          once_error *err)
{
    switch (kind) {
    case ONCE_SUBJECT_ENTERPRISE:
        return once_uscc_validate(subject, err);
    case ONCE_SUBJECT_PERSON:
        return once_resident_id_validate(subject, err);
    case ONCE_SUBJECT_UNSPECIFIED:
        break;
    }
    return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                          "unknown subject kind %d", (int)kind);
}

const char *once_subject_kind_name(once_subject_kind kind)
{
    switch (kind) {
    case ONCE_SUBJECT_ENTERPRISE:
        return "enterprise";
    case ONCE_SUBJECT_PERSON:
        return "person";
    case ONCE_SUBJECT_UNSPECIFIED:
        break;
    }
    return "unspecified";
}

int once_subject_kind_parse(const char *name, once_subject_kind *kind)
{
    if (name == NULL || kind == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if (strcmp(name, "enterprise") == 0)
        *kind = ONCE_SUBJECT_ENTERPRISE;
    else if (strcmp(name, "person") == 0)
        *kind = ONCE_SUBJECT_PERSON;
    else
        return -ONCE_ERR_INVALID_ARGUMENT;
    return 0;
}
