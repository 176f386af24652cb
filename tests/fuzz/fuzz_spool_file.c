/*
 * fuzz_spool_file.c - once-spool's files (adapters/spool/spool_file.c), on
 * arbitrary bytes.
 *
 * The first byte chooses the file: even an outbox/ record, odd a
 * requests/ file; the rest is the file. A department system writes these
 * bytes, so no input may crash the parsers, leak, or leave a half-made
 * record. Beyond that: a refusal names the member at fault and explains;
 * an accepted record has a type, a subject, the issuer given and a
 * version of at least 1, and once signed it verifies and survives
 * serialization; an accepted request has every text member non-empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_key.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISSUER "market-supervision"

static void check_record(once_record *r)
{
    if (strcmp(once_record_issuer(r), ISSUER) != 0 ||
        once_record_type(r)[0] == '\0' || once_record_subject(r)[0] == '\0' ||
        once_record_version(r) < 1 || once_record_field_count(r) == 0 ||
        once_record_status_of(r) != ONCE_STATUS_VALID)
        abort();
    fuzz_sign_check(r);
}

/* An outbox file. */
static void fuzz_record(const char *text, size_t len)
{
    once_record *r = NULL;
    char where[96] = "";
    once_error err = { 0 };

    if (spool_parse_record(text, len, ISSUER, 1, &r, where, sizeof(where),
                           &err) < 0) {
        if (r != NULL || err.message[0] == '\0' || where[0] == '\0')
            abort();
        return;
    }
    if (r == NULL)
        abort();
    check_record(r);
    once_record_free(r);
}

/* A requests/ file. */
static void fuzz_request(const char *text, size_t len)
{
    spool_request q;
    char where[96] = "";
    once_error err = { 0 };

    if (spool_parse_request(text, len, &q, where, sizeof(where), &err) < 0) {
        if (err.message[0] == '\0' || where[0] == '\0')
            abort();
        return;
    }
    if (q.type[0] == '\0' || q.subject[0] == '\0' || q.purpose[0] == '\0' ||
        q.case_id[0] == '\0' || (q.want_proof != 0 && q.want_proof != 1))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && once_init() == 0) {
        if (data[0] % 2 == 0)
            fuzz_record((const char *)data + 1, size - 1);
        else
            fuzz_request((const char *)data + 1, size - 1);
    }
    return 0;
}
