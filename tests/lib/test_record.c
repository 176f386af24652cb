/*
 * test_record.c - records: building, signing, selective disclosure,
 * verification, and the wire form, including records tampered with on the
 * way and bytes that are not records at all.
 *
 * Tampered records are made the way an attacker would: by editing the
 * serialized once.Publish message with protobuf-c, then parsing it as the
 * receiving side does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "envelope.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "record_internal.h"

#define CODE "91350100M000100Y43"
#define LICENCE "business-licence"
#define ISSUER "market-supervision"

static const char *const field_names[] = {"name", "legal_representative",
                                          "address"};
static const char *const field_values[] = {
    "Fuzhou Example Technology Co., Ltd.", "Zhang San",
    "No. 1 Example Road, Gulou District, Fuzhou"};

static once_keypair issuer_key, other_key;

static int group_setup(void **state)
{
    uint8_t seed[32];

    (void)state;
    if (once_init() < 0)
        return -1;
    memset(seed, 0x11, sizeof(seed));
    once_keypair_from_seed(&issuer_key, seed);
    memset(seed, 0x22, sizeof(seed));
    once_keypair_from_seed(&other_key, seed);
    return 0;
}

/* A signed licence with the three fields above. */
static once_record *make_licence(void)
{
    once_record *r = NULL;
    once_error err;
    size_t i;

    assert_int_equal(once_record_new(&r, LICENCE, CODE, 1, ISSUER,
                                     1700000000000ull, 0, &err), 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(once_record_add_text(r, field_names[i],
                                              field_values[i], &err), 0);
    assert_int_equal(once_record_sign(r, &issuer_key, &err), 0);
    return r;
}

static Once__Publish *unpack_record(const once_record *r)
{
    Once__Publish *p;
    uint8_t *buf;
    size_t len;

    assert_int_equal(once_record_serialize(r, &buf, &len, NULL), 0);
    p = once__publish__unpack(NULL, len, buf);
    assert_non_null(p);
    free(buf);
    return p;
}

/* Packs p and parses it as a receiver would. Returns parse's result. */
static int repack_and_parse(const Once__Publish *p, once_record **out,
                            once_error *err)
{
    size_t len = once__publish__get_packed_size(p);
    uint8_t *buf = malloc(len + 1);
    int rc;

    assert_non_null(buf);
    once__publish__pack(p, buf);
    rc = once_record_parse(out, buf, len, err);
    free(buf);
    return rc;
}

static void assert_disclosed(const once_record *r, const char *name,
                         const char *expected)
{
    const uint8_t *value;
    size_t len;

    assert_int_equal(once_record_field_value(r, name, &value, &len), 0);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(value, expected, len);
}

static void sign_and_verify(void **state)
{
    uint64_t before = once_now_ms(), after;
    once_record *r = make_licence();
    once_error err;
    size_t i;

    (void)state;
    after = once_now_ms();
    assert_int_equal(once_record_verify(r, issuer_key.public_key, &err), 0);
    assert_string_equal(once_record_type(r), LICENCE);
    assert_string_equal(once_record_subject(r), CODE);
    assert_string_equal(once_record_issuer(r), ISSUER);
    assert_int_equal(once_record_version(r), 1);
    assert_int_equal(once_record_status_of(r), ONCE_STATUS_VALID);
    assert_int_equal(once_record_valid_from(r), 1700000000000ull);
    assert_int_equal(once_record_valid_until(r), 0);
    assert_true(once_record_issued_at(r) >= before);
    assert_true(once_record_issued_at(r) <= after);
    assert_int_equal(once_record_field_count(r), 3);
    assert_int_equal(once_record_disclosure_count(r), 3);
    for (i = 0; i < 3; i++) {
        assert_string_equal(once_record_field_name(r, i), field_names[i]);
        assert_disclosed(r, field_names[i], field_values[i]);
    }
    assert_null(once_record_field_name(r, 3));
    once_record_free(r);
}

static void signature_covers_domain_and_header_bytes(void **state)
{
    once_record *r = make_licence();
    Once__Publish *p = unpack_record(r);
    const Once__SignedRecord *rec = p->record;
    uint8_t *input = malloc(RECORD_DOMAIN_BYTES + rec->header.len);

    (void)state;
    /* Checked here with libsodium alone, from the documented layout. */
    assert_non_null(input);
    memcpy(input, "ONCE-RECORD-V1\0", 15);
    memcpy(input + 15, rec->header.data, rec->header.len);
    assert_int_equal(rec->signature.len, 64);
    assert_int_equal(crypto_sign_verify_detached(rec->signature.data, input,
                                                 15 + rec->header.len,
                                                 issuer_key.public_key), 0);
    free(input);
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void disclosure_digest_matches_documented_rule(void **state)
{
    /* Expected digests computed with Python's hashlib:
     * sha256(salt + u32be(len(name)) + name + u32be(len(value)) + value). */
    static const char name_value[] = "\xe6\x9f\x90\xe6\x9f\x90\xe7\xa7\x91"
                                     "\xe6\x8a\x80\xe6\x9c\x89\xe9\x99\x90"
                                     "\xe5\x85\xac\xe5\x8f\xb8";
    uint8_t salt[16], digest[32];
    char hex[65];
    int i;

    (void)state;
    for (i = 0; i < 16; i++)
        salt[i] = (uint8_t)i;
    assert_int_equal(record_disclosure_digest(salt, "name",
                                              (const uint8_t *)name_value,
                                              strlen(name_value), digest), 0);
    once_hex_encode(hex, digest, 32);
    assert_string_equal(hex, "33f438a7fd5ec085b8a54ff4b34b1fa9"
                             "4074d1db0599d24c5679bf1e3a2265a6");
    assert_int_equal(record_disclosure_digest(salt, "empty", NULL, 0, digest),
                     0);
    once_hex_encode(hex, digest, 32);
    assert_string_equal(hex, "7c0b17a28f06ae139b5e0db6867b6806"
                             "fc51e38c1bdcea8b76aee7dda62cf71f");
}

static void header_digests_match_disclosures(void **state)
{
    once_record *r = make_licence();
    Once__Publish *p = unpack_record(r);
    Once__RecordHeader *h;
    uint8_t digest[32];
    size_t i;

    (void)state;
    assert_int_equal(record_header_parse(p->record->header.data,
                                         p->record->header.len, &h, NULL), 0);
    assert_int_equal(h->n_fields, 3);
    assert_int_equal(p->n_disclosures, 3);
    for (i = 0; i < 3; i++) {
        const Once__Disclosure *d = p->disclosures[i];

        assert_string_equal(h->fields[i]->name, d->name);
        assert_int_equal(d->salt.len, 16);
        record_disclosure_digest(d->salt.data, d->name, d->value.data,
                                 d->value.len, digest);
        assert_memory_equal(h->fields[i]->digest.data, digest, 32);
    }
    /* Every field has its own salt. */
    assert_memory_not_equal(p->disclosures[0]->salt.data,
                            p->disclosures[1]->salt.data, 16);
    once__record_header__free_unpacked(h, NULL);
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void unsigned_record_accessors_and_limits(void **state)
{
    once_record *r = NULL;
    once_error err;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_int_equal(once_record_new(&r, LICENCE, CODE, 3, ISSUER, 10, 20,
                                     &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "x", &err), 0);
    assert_int_equal(once_record_add_field(r, "empty", NULL, 0, &err), 0);
    assert_int_equal(once_record_field_count(r), 2);
    assert_int_equal(once_record_disclosure_count(r), 2);
    assert_int_equal(once_record_version(r), 3);
    assert_int_equal(once_record_valid_until(r), 20);
    assert_int_equal(once_record_issued_at(r), 0);
    assert_disclosed(r, "name", "x");
    assert_disclosed(r, "empty", "");
    /* Not signed yet: nothing to verify, disclose or send. */
    assert_int_equal(once_record_verify(r, issuer_key.public_key, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_serialize(r, &buf, &len, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    once_record_free(r);
}

static void add_field_refusals(void **state)
{
    static uint8_t big[ONCE_MAX_FIELD_VALUE + 1];
    once_record *r = NULL;
    once_error err;
    char name[80];
    int i;

    (void)state;
    assert_int_equal(once_record_new(&r, LICENCE, CODE, 1, ISSUER, 0, 0,
                                     &err), 0);
    assert_int_equal(once_record_add_text(r, "Name", "x", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_add_text(r, "", "x", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_add_text(r, "a b", "x", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    memset(name, 'a', 65);
    name[65] = '\0';
    assert_int_equal(once_record_add_text(r, name, "x", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    name[64] = '\0';
    assert_int_equal(once_record_add_text(r, name, "64 is fine", &err), 0);
    assert_int_equal(once_record_add_field(r, "big", big, sizeof(big), &err),
                     -ONCE_ERR_TOO_LARGE);
    assert_int_equal(once_record_add_field(r, "big", big, sizeof(big) - 1,
                                           &err), 0);
    assert_int_equal(once_record_add_text(r, "big", "again", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_add_field(r, "null", NULL, 1, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    for (i = 2; i < ONCE_MAX_FIELDS; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(once_record_add_text(r, name, "v", &err), 0);
    }
    assert_int_equal(once_record_field_count(r), ONCE_MAX_FIELDS);
    assert_int_equal(once_record_add_text(r, "one-too-many", "v", &err),
                     -ONCE_ERR_TOO_LARGE);
    /* A full record still signs, round-trips and verifies. */
    assert_int_equal(once_record_sign(r, &issuer_key, &err), 0);
    assert_int_equal(once_record_verify(r, issuer_key.public_key, &err), 0);
    once_record_free(r);
}

static void values_must_fit_one_message(void **state)
{
    static uint8_t value[ONCE_MAX_FIELD_VALUE];
    once_record *r = NULL;
    once_error err;
    char name[16];
    int i, rc = 0;

    (void)state;
    assert_int_equal(once_record_new(&r, LICENCE, CODE, 1, ISSUER, 0, 0,
                                     &err), 0);
    for (i = 0; i < ONCE_MAX_FIELDS && rc == 0; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        rc = once_record_add_field(r, name, value, sizeof(value), &err);
    }
    assert_int_equal(rc, -ONCE_ERR_TOO_LARGE);
    assert_true(once_record_field_count(r) < ONCE_MAX_FIELDS);
    once_record_free(r);
}

static void new_record_refusals(void **state)
{
    once_record *r = NULL;
    once_error err;

    (void)state;
    assert_int_equal(once_record_new(&r, "Licence", CODE, 1, ISSUER, 0, 0,
                                     &err), -ONCE_ERR_INVALID_ARGUMENT);
    assert_null(r);
    assert_int_equal(once_record_new(&r, LICENCE, "", 1, ISSUER, 0, 0, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_new(&r, LICENCE, "9135 0100", 1, ISSUER, 0,
                                     0, &err), -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_new(&r, LICENCE, CODE, 0, ISSUER, 0, 0,
                                     &err), -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_new(&r, LICENCE, CODE, 1, "", 0, 0, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_new(&r, LICENCE, CODE, 1, ISSUER, 20, 10,
                                     &err), -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_new(&r, LICENCE, NULL, 1, ISSUER, 0, 0,
                                     &err), -ONCE_ERR_INVALID_ARGUMENT);
    assert_null(r);
}

static void signed_record_is_immutable(void **state)
{
    once_record *r = make_licence();
    once_error err;

    (void)state;
    assert_int_equal(once_record_add_text(r, "late", "x", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_sign(r, &issuer_key, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_field_count(r), 3);
    assert_int_equal(once_record_verify(r, issuer_key.public_key, &err), 0);
    once_record_free(r);
}

static void disclosed_subset_verifies_and_hides_the_rest(void **state)
{
    static const char *const granted[] = {"name", "address"};
    once_record *r = make_licence(), *copy = NULL, *received = NULL;
    const uint8_t *value;
    once_error err;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_int_equal(once_record_disclose(r, granted, 2, &copy, &err), 0);
    assert_int_equal(once_record_verify(copy, issuer_key.public_key, &err), 0);
    assert_int_equal(once_record_field_count(copy), 3);
    assert_int_equal(once_record_disclosure_count(copy), 2);
    assert_disclosed(copy, "name", field_values[0]);
    assert_disclosed(copy, "address", field_values[2]);
    assert_int_equal(once_record_field_value(copy, "legal_representative",
                                             &value, &len),
                     -ONCE_ERR_NOT_FOUND);

    /* What goes on the wire does not hold the withheld value. */
    assert_int_equal(once_record_serialize(copy, &buf, &len, &err), 0);
    assert_null(memmem(buf, len, field_values[1], strlen(field_values[1])));
    assert_non_null(memmem(buf, len, field_values[0],
                           strlen(field_values[0])));
    assert_int_equal(once_record_parse(&received, buf, len, &err), 0);
    free(buf);
    assert_int_equal(once_record_verify(received, issuer_key.public_key,
                                        &err), 0);
    assert_int_equal(once_record_disclosure_count(received), 2);
    assert_int_equal(once_record_field_value(received, "legal_representative",
                                             &value, &len),
                     -ONCE_ERR_NOT_FOUND);
    once_record_free(received);
    once_record_free(copy);
    once_record_free(r);
}

static void disclose_ignores_unknown_and_repeated_names(void **state)
{
    static const char *const names[] = {"name", "no-such-field", "name"};
    once_record *r = make_licence(), *copy = NULL, *none = NULL;
    once_error err;

    (void)state;
    assert_int_equal(once_record_disclose(r, names, 3, &copy, &err), 0);
    assert_int_equal(once_record_disclosure_count(copy), 1);
    assert_int_equal(once_record_verify(copy, issuer_key.public_key, &err), 0);
    assert_int_equal(once_record_disclose(r, NULL, 0, &none, &err), 0);
    assert_int_equal(once_record_disclosure_count(none), 0);
    assert_int_equal(once_record_verify(none, issuer_key.public_key, &err), 0);
    once_record_free(none);
    once_record_free(copy);
    once_record_free(r);
}

static void tampered_disclosure_value_fails(void **state)
{
    once_record *r = make_licence(), *received = NULL;
    Once__Publish *p = unpack_record(r);
    static uint8_t forged[] = "Li Si";
    uint8_t *original = p->disclosures[1]->value.data;
    size_t original_len = p->disclosures[1]->value.len;
    once_error err;

    (void)state;
    p->disclosures[1]->value.data = forged;
    p->disclosures[1]->value.len = 5;
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_INVALID_RECORD);
    assert_int_equal(err.code, ONCE_ERR_INVALID_RECORD);
    assert_non_null(strstr(err.message, "legal_representative"));
    /* The message names the field, never the value. */
    assert_null(strstr(err.message, "Li Si"));
    once_record_free(received);
    p->disclosures[1]->value.data = original;
    p->disclosures[1]->value.len = original_len;
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void tampered_salt_or_swapped_names_fail(void **state)
{
    once_record *r = make_licence(), *received = NULL;
    Once__Publish *p = unpack_record(r);
    char *name;
    once_error err;

    (void)state;
    p->disclosures[0]->salt.data[0] ^= 1;
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_INVALID_RECORD);
    once_record_free(received);
    p->disclosures[0]->salt.data[0] ^= 1;

    /* The value of one field presented under another field's name. */
    name = p->disclosures[0]->name;
    p->disclosures[0]->name = p->disclosures[2]->name;
    p->disclosures[2]->name = name;
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_INVALID_RECORD);
    once_record_free(received);
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void tampered_header_byte_fails(void **state)
{
    once_record *r = make_licence(), *received = NULL;
    Once__Publish *p = unpack_record(r);
    uint8_t *subject;
    once_error err;

    (void)state;
    /* Change the subject's last character: the header still decodes and
     * passes its shape checks, so only the signature can catch it. */
    subject = memmem(p->record->header.data, p->record->header.len, CODE,
                     strlen(CODE));
    assert_non_null(subject);
    subject[17] = '4';
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_string_equal(once_record_subject(received), "91350100M000100Y44");
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    assert_int_equal(err.code, ONCE_ERR_BAD_SIGNATURE);
    once_record_free(received);
    subject[17] = '3';

    /* A flipped signature bit. */
    p->record->signature.data[10] ^= 0x40;
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    once_record_free(received);
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void wrong_key_fails(void **state)
{
    once_record *r = make_licence();
    once_error err;

    (void)state;
    assert_int_equal(once_record_verify(r, other_key.public_key, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    once_record_free(r);
}

static void disclosure_not_in_header_fails(void **state)
{
    once_record *r = make_licence(), *received = NULL;
    Once__Publish *p = unpack_record(r);
    Once__Disclosure extra = ONCE__DISCLOSURE__INIT;
    Once__Disclosure **grown;
    uint8_t salt[16] = {0};
    once_error err;

    (void)state;
    extra.salt.data = salt;
    extra.salt.len = 16;
    extra.name = "registered_capital";
    extra.value.data = (uint8_t *)"100";
    extra.value.len = 3;
    grown = realloc(p->disclosures, 4 * sizeof(*grown));
    assert_non_null(grown);
    p->disclosures = grown;
    p->disclosures[3] = &extra;
    p->n_disclosures = 4;
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_INVALID_RECORD);
    assert_non_null(strstr(err.message, "not in the signed header"));
    once_record_free(received);
    p->n_disclosures = 3;
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void duplicate_disclosure_fails(void **state)
{
    once_record *r = make_licence(), *received = NULL;
    Once__Publish *p = unpack_record(r);
    Once__Disclosure **grown;
    once_error err;

    (void)state;
    /* The same, valid disclosure twice. */
    grown = realloc(p->disclosures, 4 * sizeof(*grown));
    assert_non_null(grown);
    p->disclosures = grown;
    p->disclosures[3] = p->disclosures[0];
    p->n_disclosures = 4;
    assert_int_equal(repack_and_parse(p, &received, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     -ONCE_ERR_INVALID_RECORD);
    assert_non_null(strstr(err.message, "twice"));
    once_record_free(received);
    p->n_disclosures = 3;
    once__publish__free_unpacked(p, NULL);
    once_record_free(r);
}

static void serialize_parse_round_trip(void **state)
{
    once_record *r = make_licence(), *received = NULL;
    uint8_t *buf, *again;
    size_t len, again_len, i;
    once_error err;

    (void)state;
    assert_int_equal(once_record_serialize(r, &buf, &len, &err), 0);
    assert_int_equal(once_record_parse(&received, buf, len, &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     0);
    assert_string_equal(once_record_type(received), LICENCE);
    assert_string_equal(once_record_subject(received), CODE);
    assert_string_equal(once_record_issuer(received), ISSUER);
    assert_int_equal(once_record_version(received), 1);
    assert_int_equal(once_record_issued_at(received),
                     once_record_issued_at(r));
    assert_int_equal(once_record_valid_from(received), 1700000000000ull);
    assert_int_equal(once_record_field_count(received), 3);
    for (i = 0; i < 3; i++)
        assert_disclosed(received, field_names[i], field_values[i]);
    /* The received header is kept as bytes: serializing it again gives the
     * same message. */
    assert_int_equal(once_record_serialize(received, &again, &again_len, &err),
                     0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, buf, len);
    free(again);
    free(buf);
    once_record_free(received);
    once_record_free(r);
}

static void publish_view_fills_a_revoke_body(void **state)
{
    once_record *r = NULL, *received = NULL;
    record_publish_view v;
    Once__Revoke revoke = ONCE__REVOKE__INIT, *decoded;
    uint8_t *body;
    size_t len;
    once_error err;

    (void)state;
    assert_int_equal(once_record_new_revocation(&r, LICENCE, CODE, 2, ISSUER,
                                                &err), 0);
    assert_int_equal(record_publish_view_init(&v, r, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_sign(r, &issuer_key, &err), 0);
    assert_int_equal(record_publish_view_init(&v, r, &err), 0);
    revoke.record = &v.record;
    len = once__revoke__get_packed_size(&revoke);
    body = malloc(len);
    assert_non_null(body);
    once__revoke__pack(&revoke, body);
    decoded = once__revoke__unpack(NULL, len, body);
    assert_non_null(decoded);
    assert_int_equal(record_from_parts(&received, decoded->record, NULL, 0,
                                       &err), 0);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     0);
    assert_int_equal(once_record_status_of(received), ONCE_STATUS_REVOKED);
    assert_int_equal(once_record_version(received), 2);
    once_record_free(received);
    once__revoke__free_unpacked(decoded, NULL);
    free(body);
    once_record_free(r);
}

static void revocation_record(void **state)
{
    once_record *r = NULL, *received = NULL;
    once_error err;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_int_equal(once_record_new_revocation(&r, LICENCE, CODE, 2, ISSUER,
                                                &err), 0);
    assert_int_equal(once_record_status_of(r), ONCE_STATUS_REVOKED);
    assert_int_equal(once_record_add_text(r, "name", "x", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_sign(r, &issuer_key, &err), 0);
    assert_int_equal(once_record_verify(r, issuer_key.public_key, &err), 0);
    assert_int_equal(once_record_serialize(r, &buf, &len, &err), 0);
    assert_int_equal(once_record_parse(&received, buf, len, &err), 0);
    free(buf);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     0);
    assert_int_equal(once_record_status_of(received), ONCE_STATUS_REVOKED);
    assert_int_equal(once_record_field_count(received), 0);
    assert_int_equal(once_record_version(received), 2);
    assert_int_equal(once_record_verify(received, other_key.public_key, &err),
                     -ONCE_ERR_BAD_SIGNATURE);
    once_record_free(received);
    once_record_free(r);
}

/* Signs header bytes as the issuer and parses them as a Publish without
 * disclosures: the way to reach the header checks past the signature. */
static int parse_signed_header(const uint8_t *header, size_t len,
                               once_error *err)
{
    Once__Publish p = ONCE__PUBLISH__INIT;
    Once__SignedRecord rec = ONCE__SIGNED_RECORD__INIT;
    uint8_t *input = malloc(RECORD_DOMAIN_BYTES + len + 1);
    uint8_t sig[64];
    once_record *r = NULL;
    int rc;

    assert_non_null(input);
    memcpy(input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
    if (len > 0)
        memcpy(input + RECORD_DOMAIN_BYTES, header, len);
    crypto_sign_detached(sig, NULL, input, RECORD_DOMAIN_BYTES + len,
                         issuer_key.secret_key);
    free(input);
    rec.header.data = (uint8_t *)header;
    rec.header.len = len;
    rec.signature.data = sig;
    rec.signature.len = 64;
    p.record = &rec;
    rc = repack_and_parse(&p, &r, err);
    if (rc == 0)
        assert_int_equal(once_record_verify(r, issuer_key.public_key, err), 0);
    once_record_free(r);
    return rc;
}

static int parse_header_struct(const Once__RecordHeader *h, once_error *err)
{
    size_t len = once__record_header__get_packed_size(h);
    uint8_t *buf = malloc(len + 1);
    int rc;

    assert_non_null(buf);
    once__record_header__pack(h, buf);
    rc = parse_signed_header(buf, len, err);
    free(buf);
    return rc;
}

/* A revocation's reason is signed into its header, reaches a receiver
 * with it, and is refused where the broker would refuse the header. */
static void revocation_reason(void **state)
{
    static const char reason[] = "\xe5\x90\x8a\xe9\x94\x80: business "
                                 "deregistered 2026-03-01";
    Once__RecordHeader h = ONCE__RECORD_HEADER__INIT;
    once_record *r = NULL, *received = NULL, *plain = NULL;
    char long_reason[ONCE_MAX_REASON + 2];
    once_error err;
    uint8_t *buf;
    size_t len;

    (void)state;
    assert_int_equal(once_record_new_revocation_reason(
                         &r, LICENCE, CODE, 2, ISSUER, reason, &err), 0);
    assert_string_equal(once_record_reason(r), reason);
    assert_int_equal(once_record_sign(r, &issuer_key, &err), 0);
    assert_int_equal(once_record_serialize(r, &buf, &len, &err), 0);
    assert_int_equal(once_record_parse(&received, buf, len, &err), 0);
    free(buf);
    assert_int_equal(once_record_verify(received, issuer_key.public_key, &err),
                     0);
    assert_string_equal(once_record_reason(received), reason);
    once_record_free(received);
    once_record_free(r);

    /* Without a reason the header has no field 10: the bytes of before. */
    assert_int_equal(once_record_new_revocation(&plain, LICENCE, CODE, 2,
                                                ISSUER, &err), 0);
    assert_string_equal(once_record_reason(plain), "");
    assert_int_equal(once_record_sign(plain, &issuer_key, &err), 0);
    assert_int_equal(once_record_serialize(plain, &buf, &len, &err), 0);
    assert_int_equal(once_record_parse(&received, buf, len, &err), 0);
    free(buf);
    assert_string_equal(once_record_reason(received), "");
    once_record_free(received);
    once_record_free(plain);

    r = (once_record *)1;
    assert_int_equal(once_record_new_revocation_reason(
                         &r, LICENCE, CODE, 2, ISSUER, "", &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_null(r);
    assert_int_equal(once_record_new_revocation_reason(
                         &r, LICENCE, CODE, 2, ISSUER, NULL, &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    assert_int_equal(once_record_new_revocation_reason(
                         &r, LICENCE, CODE, 2, ISSUER, "forged\nGRANTED",
                         &err), -ONCE_ERR_INVALID_TEXT);
    memset(long_reason, 'x', ONCE_MAX_REASON);
    long_reason[ONCE_MAX_REASON] = '\0';
    assert_int_equal(once_record_new_revocation_reason(
                         &r, LICENCE, CODE, 2, ISSUER, long_reason, &err), 0);
    once_record_free(r);
    long_reason[ONCE_MAX_REASON] = 'x';
    long_reason[ONCE_MAX_REASON + 1] = '\0';
    assert_int_equal(once_record_new_revocation_reason(
                         &r, LICENCE, CODE, 2, ISSUER, long_reason, &err),
                     -ONCE_ERR_TOO_LARGE);

    /* Headers another implementation could sign: refused on receipt. */
    h.type = LICENCE;
    h.subject = CODE;
    h.version = 2;
    h.issuer = ISSUER;
    h.status = ONCE__RECORD_STATUS__STATUS_REVOKED;
    h.reason = (char *)reason;
    assert_int_equal(parse_header_struct(&h, &err), 0);
    h.reason = long_reason;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.reason = "tab\there";
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.reason = (char *)reason;
    h.status = ONCE__RECORD_STATUS__STATUS_VALID;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    assert_non_null(strstr(err.message, "only a revocation"));
}

static void signed_but_inconsistent_headers_are_refused(void **state)
{
    Once__RecordHeader h = ONCE__RECORD_HEADER__INIT;
    Once__FieldDigest f1 = ONCE__FIELD_DIGEST__INIT, f2 = f1;
    Once__FieldDigest *fields[2] = {&f1, &f2};
    uint8_t digest[33] = {0};
    once_error err;

    (void)state;
    h.type = LICENCE;
    h.subject = CODE;
    h.version = 1;
    h.issuer = ISSUER;
    h.status = ONCE__RECORD_STATUS__STATUS_VALID;
    f1.name = "name";
    f1.digest.data = digest;
    f1.digest.len = 32;
    f2.name = "address";
    f2.digest.data = digest;
    f2.digest.len = 32;
    h.fields = fields;
    h.n_fields = 2;
    assert_int_equal(parse_header_struct(&h, &err), 0);

    f2.name = "name";
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    f2.name = "address";
    f2.digest.len = 33;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    f2.digest.len = 31;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    f2.digest.len = 32;
    f2.name = "Address";
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    f2.name = "address";

    h.status = ONCE__RECORD_STATUS__STATUS_REVOKED; /* with fields */
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.status = ONCE__RECORD_STATUS__STATUS_UNSPECIFIED;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.status = (Once__RecordStatus)7;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.status = ONCE__RECORD_STATUS__STATUS_VALID;

    h.version = 0;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.version = 1;
    h.valid_from = 20;
    h.valid_until = 10;
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.valid_until = 0;
    h.type = "";
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.type = LICENCE;
    h.subject = "has space";
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.subject = CODE;
    h.issuer = "Market";
    assert_int_equal(parse_header_struct(&h, &err), -ONCE_ERR_INVALID_RECORD);
    h.issuer = ISSUER;
    assert_int_equal(parse_header_struct(&h, &err), 0);
}

static void header_string_with_nul_is_refused(void **state)
{
    /* type "t", subject "AB\0CD" (protobuf-c would read "AB"), version 1,
     * issuer "i", status VALID: written by hand. */
    static const uint8_t header[] = {0x0a, 1, 't', 0x12, 5, 'A', 'B', 0,
                                     'C',  'D', 0x18, 1, 0x22, 1, 'i', 0x40,
                                     1};
    static const uint8_t clean[] = {0x0a, 1, 't', 0x12, 2, 'A', 'B', 0x18,
                                    1,    0x22, 1, 'i', 0x40, 1};
    once_error err;

    (void)state;
    assert_int_equal(parse_signed_header(clean, sizeof(clean), &err), 0);
    assert_int_equal(parse_signed_header(header, sizeof(header), &err),
                     -ONCE_ERR_INVALID_RECORD);
    assert_non_null(strstr(err.message, "subject is not clean text"));
}

static void garbage_is_refused_cleanly(void **state)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x0f};
    once_record *r = make_licence(), *received = NULL;
    uint8_t *buf, noise[512];
    size_t len, cut;
    once_error err;
    int rc, i;

    (void)state;
    assert_int_equal(once_record_parse(&received, junk, sizeof(junk), &err),
                     -ONCE_ERR_MALFORMED);
    assert_null(received);
    /* An empty message decodes, but holds no record. */
    assert_int_equal(once_record_parse(&received, NULL, 0, &err),
                     -ONCE_ERR_MALFORMED);
    assert_int_equal(once_record_parse(&received, junk, ONCE_MAX_MESSAGE + 1,
                                       &err), -ONCE_ERR_TOO_LARGE);
    assert_int_equal(once_record_parse(NULL, junk, sizeof(junk), &err),
                     -ONCE_ERR_INVALID_ARGUMENT);
    for (i = 0; i < 200; i++) {
        randombytes_buf(noise, sizeof(noise));
        rc = once_record_parse(&received, noise, (size_t)i * 2 + 1, &err);
        if (rc == 0) {
            assert_int_not_equal(once_record_verify(received,
                                                    issuer_key.public_key,
                                                    &err), 0);
            once_record_free(received);
        } else {
            assert_null(received);
            assert_true(err.code > 0);
        }
    }
    /* Every truncation of a real record: parsing never crashes, and what
     * does parse verifies only when the cut fell between whole
     * disclosures. */
    assert_int_equal(once_record_serialize(r, &buf, &len, &err), 0);
    for (cut = 0; cut < len; cut++) {
        rc = once_record_parse(&received, buf, cut, &err);
        if (rc == 0) {
            if (once_record_verify(received, issuer_key.public_key, &err) == 0)
                assert_true(once_record_disclosure_count(received) < 3);
            once_record_free(received);
        } else {
            assert_null(received);
        }
    }
    free(buf);
    once_record_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_and_verify),
        cmocka_unit_test(signature_covers_domain_and_header_bytes),
        cmocka_unit_test(disclosure_digest_matches_documented_rule),
        cmocka_unit_test(header_digests_match_disclosures),
        cmocka_unit_test(unsigned_record_accessors_and_limits),
        cmocka_unit_test(add_field_refusals),
        cmocka_unit_test(values_must_fit_one_message),
        cmocka_unit_test(new_record_refusals),
        cmocka_unit_test(signed_record_is_immutable),
        cmocka_unit_test(disclosed_subset_verifies_and_hides_the_rest),
        cmocka_unit_test(disclose_ignores_unknown_and_repeated_names),
        cmocka_unit_test(tampered_disclosure_value_fails),
        cmocka_unit_test(tampered_salt_or_swapped_names_fail),
        cmocka_unit_test(tampered_header_byte_fails),
        cmocka_unit_test(wrong_key_fails),
        cmocka_unit_test(disclosure_not_in_header_fails),
        cmocka_unit_test(duplicate_disclosure_fails),
        cmocka_unit_test(serialize_parse_round_trip),
        cmocka_unit_test(publish_view_fills_a_revoke_body),
        cmocka_unit_test(revocation_record),
        cmocka_unit_test(revocation_reason),
        cmocka_unit_test(signed_but_inconsistent_headers_are_refused),
        cmocka_unit_test(header_string_with_nul_is_refused),
        cmocka_unit_test(garbage_is_refused_cleanly),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
