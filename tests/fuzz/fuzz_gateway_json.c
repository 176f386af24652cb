/*
 * fuzz_gateway_json.c - the REST gateway's request bodies to records
 * (adapters/gateway/json_record.c), on arbitrary bytes.
 *
 * The first byte chooses the body: even a publish body, odd a revocation
 * body; the rest is the body. Department systems send these bytes, so no
 * input may crash the parser, leak, or leave a half-made record. Beyond
 * that: a refusal names the member at fault and explains; an accepted body
 * gives a record of the requested type, subject and issuer with a version
 * of at least 1 that, once signed, verifies and survives serialization.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_key.h"
#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TYPE "business-licence"
#define SUBJECT "91110108MA00000019"
#define ISSUER "market-supervision"

static void check_record(once_record *r, once_record_status status)
{
    if (strcmp(once_record_type(r), TYPE) != 0 ||
        strcmp(once_record_subject(r), SUBJECT) != 0 ||
        strcmp(once_record_issuer(r), ISSUER) != 0 ||
        once_record_version(r) < 1 || once_record_status_of(r) != status)
        abort();
    if (status == ONCE_STATUS_VALID && once_record_field_count(r) == 0)
        abort();
    fuzz_sign_check(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    once_record *r = NULL;
    char where[96], *reason = NULL;
    once_error err;
    int rc;

    if (size == 0)
        return 0;
    once_init();
    memset(&err, 0, sizeof(err));
    if (data[0] % 2 == 0)
        rc = json_publish_record((const char *)data + 1, size - 1, TYPE,
                                 SUBJECT, ISSUER, 1, &r, where,
                                 sizeof(where), &err);
    else
        rc = json_revocation_record((const char *)data + 1, size - 1, TYPE,
                                    SUBJECT, ISSUER, 1, &r, &reason, where,
                                    sizeof(where), &err);
    if (rc < 0) {
        if (r != NULL || reason != NULL || err.message[0] == '\0' ||
            where[0] == '\0')
            abort();
        return 0;
    }
    if (r == NULL || (data[0] % 2 == 1 && reason == NULL))
        abort();
    check_record(r, data[0] % 2 == 0 ? ONCE_STATUS_VALID
                                     : ONCE_STATUS_REVOKED);
    once_record_free(r);
    free(reason);
    return 0;
}
