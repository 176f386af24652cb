/*
 * fuzz_record_parse.c - once_record_parse and everything a receiver then
 * does with the record, on arbitrary bytes.
 *
 * once_record_parse reads bytes from outside (a broker's answer, a file
 * handed over by another department), so no input may crash it, leak, or
 * leave a half-made record behind. Beyond not crashing, this checks the
 * properties a caller relies on: a refusal fills the error; a parsed record
 * serializes to bytes that parse again to the same serialization (the
 * header travels as the bytes it was signed as); and a disclosed copy of a
 * verified record verifies too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_key.h"
#include "once/once.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const once_record *r)
{
    once_record *again = NULL;
    uint8_t *first, *second;
    size_t first_len, second_len;

    if (once_record_serialize(r, &first, &first_len, NULL) < 0)
        abort();
    if (once_record_parse(&again, first, first_len, NULL) < 0)
        abort();
    if (once_record_serialize(again, &second, &second_len, NULL) < 0)
        abort();
    if (first_len != second_len || memcmp(first, second, first_len) != 0)
        abort();
    free(first);
    free(second);
    once_record_free(again);
}

static void check_disclosed_half(const once_record *r, const uint8_t *pk)
{
    const char *names[ONCE_MAX_FIELDS];
    size_t n = once_record_field_count(r), i, kept = 0;
    once_record *copy = NULL;

    for (i = 0; i < n; i += 2)
        names[kept++] = once_record_field_name(r, i);
    if (once_record_disclose(r, names, kept, &copy, NULL) < 0)
        abort();
    if (once_record_verify(copy, pk, NULL) != 0)
        abort();
    once_record_free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static once_keypair key;
    static int ready;
    once_record *r = NULL;
    const uint8_t *value;
    once_error err;
    size_t i, len;
    int verified;

    if (!ready) {
        if (once_init() < 0)
            abort();
        fuzz_key(&key);
        ready = 1;
    }
    err.code = 0;
    if (once_record_parse(&r, data, size, &err) < 0) {
        if (r != NULL || err.code == 0)
            abort();
        return 0;
    }
    verified = once_record_verify(r, key.public_key, &err) == 0;
    if (once_record_type(r) == NULL || once_record_subject(r) == NULL ||
        once_record_issuer(r) == NULL || once_record_version(r) == 0)
        abort();
    for (i = 0; i < once_record_field_count(r); i++) {
        const char *name = once_record_field_name(r, i);

        if (name == NULL)
            abort();
        (void)once_record_field_value(r, name, &value, &len);
    }
    check_round_trip(r);
    if (verified)
        check_disclosed_half(r, key.public_key);
    once_record_free(r);
    return 0;
}
