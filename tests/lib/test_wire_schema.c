/*
 * test_wire_schema.c - the hand-written wire tables (lib/wire_schema.c)
 * against the descriptors protoc-c generated from once.proto.
 *
 * wire_schema_check_all must pass on the tables as built: it is what
 * onced runs at start-up, and a failure here means once.proto changed
 * under the walker. The other tests build tables that differ from
 * once.proto in one way each (a number, a name, a kind, a label, a
 * missing or extra field, a nested message) and check that each is caught,
 * so the check cannot pass by checking nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "once.pb-c.h"
#include "wire_schema.h"

#define FIELDS(f) f, sizeof(f) / sizeof((f)[0])

/* once.proto's Revoke: record = 1 (SignedRecord), want_proof = 2. */
static const wire_field signed_record_fields[] = {
    {1, "header", WIRE_BYTES, 1, NULL},
    {2, "signature", WIRE_BYTES, 1, NULL},
};
static const wire_message signed_record = {
    "SignedRecord", FIELDS(signed_record_fields),
    &once__signed_record__descriptor};

static void expect_mismatch(const wire_field *fields, size_t n,
                            const char *name,
                            const ProtobufCMessageDescriptor *desc,
                            const char *fragment)
{
    wire_message m = {name, fields, n, desc};
    once_error err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(wire_schema_check(&m, &err), -ONCE_ERR_INTERNAL);
    assert_non_null(strstr(err.message, fragment));
}

static void test_built_tables_match_once_proto(void **state)
{
    once_error err;

    (void)state;
    memset(&err, 0, sizeof(err));
    assert_int_equal(wire_schema_check_all(&err), 0);
    assert_int_equal(wire_schema_check(&wire_envelope, &err), 0);
    assert_int_equal(wire_schema_check(&wire_record_header, &err), 0);
}

static void test_a_correct_table_passes(void **state)
{
    static const wire_field fields[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
        {2, "want_proof", WIRE_VARINT, 1, NULL},
    };
    wire_message m = {"Revoke", FIELDS(fields), &once__revoke__descriptor};
    once_error err;

    (void)state;
    assert_int_equal(wire_schema_check(&m, &err), 0);
}

static void test_each_difference_is_caught(void **state)
{
    static const wire_field wrong_number[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
        {3, "want_proof", WIRE_VARINT, 1, NULL},
    };
    static const wire_field wrong_name[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
        {2, "proof", WIRE_VARINT, 1, NULL},
    };
    static const wire_field wrong_kind[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
        {2, "want_proof", WIRE_BYTES, 1, NULL},
    };
    static const wire_field wrong_label[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
        {2, "want_proof", WIRE_VARINT, 8, NULL},
    };
    static const wire_field missing[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
    };
    static const wire_field twice[] = {
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
        {1, "record", WIRE_MESSAGE, 1, &signed_record},
    };
    static const wire_field other_nested_fields[] = {
        {1, "header", WIRE_TEXT, 1, NULL},
        {2, "signature", WIRE_BYTES, 1, NULL},
    };
    static const wire_message other_nested = {
        "SignedRecord", FIELDS(other_nested_fields),
        &once__signed_record__descriptor};
    static const wire_field wrong_nested[] = {
        {1, "record", WIRE_MESSAGE, 1, &other_nested},
        {2, "want_proof", WIRE_VARINT, 1, NULL},
    };
    static const wire_field not_a_message[] = {
        {1, "record", WIRE_MESSAGE, 1, &wire_request},
        {2, "want_proof", WIRE_VARINT, 1, NULL},
    };
    const ProtobufCMessageDescriptor *revoke = &once__revoke__descriptor;

    (void)state;
    expect_mismatch(FIELDS(wrong_number), "Revoke", revoke,
                    "does not define");
    expect_mismatch(FIELDS(wrong_name), "Revoke", revoke, "want_proof");
    expect_mismatch(FIELDS(wrong_kind), "Revoke", revoke, "type or label");
    expect_mismatch(FIELDS(wrong_label), "Revoke", revoke, "type or label");
    expect_mismatch(FIELDS(missing), "Revoke", revoke, "has 1 fields");
    expect_mismatch(FIELDS(twice), "Revoke", revoke, "twice");
    expect_mismatch(FIELDS(wrong_nested), "Revoke", revoke,
                    "SignedRecord.header");
    expect_mismatch(FIELDS(not_a_message), "Revoke", revoke,
                    "Revoke.record");
    expect_mismatch(FIELDS(signed_record_fields), "Revoke",
                    &once__signed_record__descriptor, "not once.proto's");
}

/* The tables as they were before Request.user (7) and
 * RecordHeader.reason (10) were added: a walker left at that would refuse
 * every request naming an official as MALFORMED, and the check says so. */
static void test_tables_without_the_added_fields_are_caught(void **state)
{
    static const wire_field request_before_user[] = {
        {1, "type", WIRE_TEXT, 1, NULL},
        {2, "subject", WIRE_TEXT, 1, NULL},
        {3, "purpose", WIRE_TEXT, 1, NULL},
        {4, "case_id", WIRE_TEXT, 1, NULL},
        {5, "version", WIRE_VARINT, 1, NULL},
        {6, "want_proof", WIRE_VARINT, 1, NULL},
    };
    static const wire_field user_as_bytes[] = {
        {1, "type", WIRE_TEXT, 1, NULL},
        {2, "subject", WIRE_TEXT, 1, NULL},
        {3, "purpose", WIRE_TEXT, 1, NULL},
        {4, "case_id", WIRE_TEXT, 1, NULL},
        {5, "version", WIRE_VARINT, 1, NULL},
        {6, "want_proof", WIRE_VARINT, 1, NULL},
        {7, "user", WIRE_BYTES, 1, NULL},
    };
    static const wire_field header_before_reason[] = {
        {1, "type", WIRE_TEXT, 1, NULL},
        {2, "subject", WIRE_TEXT, 1, NULL},
        {3, "version", WIRE_VARINT, 1, NULL},
        {4, "issuer", WIRE_TEXT, 1, NULL},
        {5, "issued_at", WIRE_VARINT, 1, NULL},
        {6, "valid_from", WIRE_VARINT, 1, NULL},
        {7, "valid_until", WIRE_VARINT, 1, NULL},
        {8, "status", WIRE_VARINT, 1, NULL},
        {9, "fields", WIRE_MESSAGE, ONCE_MAX_FIELDS, NULL},
    };

    (void)state;
    expect_mismatch(FIELDS(request_before_user), "Request",
                    &once__request__descriptor, "has 6 fields");
    /* user is text: a control character in it must be refused on the
     * wire, which a bytes entry would let through. */
    expect_mismatch(FIELDS(user_as_bytes), "Request",
                    &once__request__descriptor, "Request.user");
    expect_mismatch(FIELDS(header_before_reason), "RecordHeader",
                    &once__record_header__descriptor, "has 9 fields");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_built_tables_match_once_proto),
        cmocka_unit_test(test_a_correct_table_passes),
        cmocka_unit_test(test_each_difference_is_caught),
        cmocka_unit_test(test_tables_without_the_added_fields_are_caught),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
