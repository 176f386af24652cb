/*
 * api_only.c - a department's program as it would be written against an
 * installed libonce: it includes only <once/once.h> and links only -lonce
 * (through the installed libonce.pc).
 *
 * test_api_only.sh installs the build into a temporary directory and
 * compiles and runs this there. It fails to compile or link if once.h
 * needs an internal header, if libonce.pc does not give the right flags,
 * or if libonce.so stops exporting an API function; it fails when run if
 * the shared library does not work on its own: an issuer signs a record,
 * a requester parses it from the wire form, keeps two of its fields, and
 * verifies it with the issuer's public key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <once/once.h>

static int fail(const char *what, const once_error *err)
{
    fprintf(stderr, "api_only: %s: %s (%s)\n", what,
            err != NULL ? err->message : "",
            err != NULL ? once_error_name(err->code) : "");
    return 1;
}

int main(void)
{
    static const char *const granted[] = {"name", "address"};
    char subject[19] = "91350100M000100Y0";
    once_record *issued = NULL, *received = NULL, *disclosed = NULL;
    once_keypair issuer;
    once_error err = {0};
    const uint8_t *value;
    uint8_t *wire = NULL;
    size_t wire_len = 0, value_len;
    int rc = 1;

    if (once_init() < 0 || once_keypair_generate(&issuer) < 0)
        return fail("init", NULL);
    if (once_uscc_check_char(subject, &subject[17]) < 0)
        return fail("subject", NULL);
    subject[18] = '\0';
    if (once_uscc_validate(subject, &err) < 0)
        return fail("subject", &err);
    if (once_record_new(&issued, "business-licence", subject, 1,
                        "market-supervision", 1767225600000ull, 0,
                        &err) < 0 ||
        once_record_add_text(issued, "name", "Example Ltd", &err) < 0 ||
        once_record_add_text(issued, "address", "1 Example Road", &err) < 0 ||
        once_record_add_text(issued, "capital", "1000000", &err) < 0 ||
        once_record_sign(issued, &issuer, &err) < 0 ||
        once_record_serialize(issued, &wire, &wire_len, &err) < 0) {
        fail("issue", &err);
        goto out;
    }
    if (once_record_parse(&received, wire, wire_len, &err) < 0 ||
        once_record_disclose(received, granted, 2, &disclosed, &err) < 0 ||
        once_record_verify(disclosed, issuer.public_key, &err) < 0) {
        fail("receive", &err);
        goto out;
    }
    if (once_record_disclosure_count(disclosed) != 2 ||
        once_record_field_count(disclosed) != 3 ||
        once_record_field_value(disclosed, "capital", &value, &value_len) !=
            -ONCE_ERR_NOT_FOUND ||
        once_record_field_value(disclosed, "name", &value, &value_len) < 0 ||
        value_len != strlen("Example Ltd") ||
        memcmp(value, "Example Ltd", value_len) != 0) {
        fail("the disclosed record", NULL);
        goto out;
    }
    printf("api_only: ok\n");
    rc = 0;
out:
    free(wire);
    once_record_free(issued);
    once_record_free(received);
    once_record_free(disclosed);
    once_keypair_wipe(&issuer);
    return rc;
}
