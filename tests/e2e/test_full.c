/*
 * test_full.c - a broker whose database is full refuses publishes with
 * STORAGE_FULL and keeps serving reads.
 *
 * The broker home's once.conf is given a 1 MiB LMDB map; records with a
 * 60 KiB field fill it within a few dozen publishes. After the first
 * STORAGE_FULL, the records stored before must still be served, pings
 * answered, and SIGTERM must still stop the broker with status 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define TYPE "scan"
#define PURPOSE "archive"
#define BLOB_BYTES (60 * 1024)
#define MAX_PUBLISHES 200

static e2e_broker broker;
static e2e_dept archive, reader;

/* Rewrites map_size_mb in HOME/once.conf. */
static int shrink_map(void)
{
    char path[PATH_MAX + 16], line[1024];
    char *text = NULL;
    size_t len = 0;
    FILE *in, *out;

    snprintf(path, sizeof(path), "%s/once.conf", broker.home);
    in = fopen(path, "r");
    out = open_memstream(&text, &len);
    if (in == NULL || out == NULL)
        return -1;
    while (fgets(line, sizeof(line), in) != NULL)
        fputs(strncmp(line, "map_size_mb", 11) == 0 ? "map_size_mb = 1\n"
                                                    : line,
              out);
    fclose(in);
    fclose(out);
    out = fopen(path, "w");
    if (out == NULL)
        return -1;
    fwrite(text, 1, len, out);
    fclose(out);
    free(text);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (e2e_init(&broker) != 0 || shrink_map() != 0 ||
        e2e_dept_add(&broker, &archive, "archive") != 0 ||
        e2e_dept_add(&broker, &reader, "reader") != 0 ||
        e2e_oncectl(&broker, "type", "add", TYPE, "--issuer", archive.id,
                    "--subject", "enterprise", "--fields", "blob", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", reader.id,
                    "--type", TYPE, "--purpose", PURPOSE, "--fields", "blob",
                    NULL) != 0)
        return -1;
    return e2e_start(&broker, &archive, NULL);
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

static void test_full_database_still_serves_reads(void **state)
{
    uint8_t *blob = malloc(BLOB_BYTES);
    once_client *writer = NULL, *req = NULL;
    char first[19], subject[19];
    once_record *r = NULL;
    once_error err;
    int i, rc = 0;

    (void)state;
    assert_non_null(blob);
    memset(blob, 'z', BLOB_BYTES);
    assert_int_equal(e2e_client(&broker, &archive, &writer, &err), 0);
    assert_int_equal(e2e_client(&broker, &reader, &req, &err), 0);
    e2e_uscc(first, 990000);
    for (i = 0; i < MAX_PUBLISHES; i++) {
        e2e_uscc(subject, 990000 + (unsigned)i);
        assert_int_equal(once_record_new(&r, TYPE, subject, 1, archive.id, 0,
                                         0, &err), 0);
        assert_int_equal(once_record_add_field(r, "blob", blob, BLOB_BYTES,
                                               &err), 0);
        assert_int_equal(once_record_sign(r, &archive.kp, &err), 0);
        rc = once_client_publish(writer, r, &err);
        once_record_free(r);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, -ONCE_ERR_STORAGE_FULL);
    assert_true(i > 0);
    assert_non_null(strstr(err.message, "map_size_mb"));

    /* Reads do not need the writer. */
    assert_int_equal(once_client_request(req, TYPE, first, PURPOSE, "A-1", 0,
                                         &r, &err), 0);
    assert_int_equal(once_record_verify(r, archive.kp.public_key, &err), 0);
    assert_int_equal(once_record_disclosure_count(r), 1);
    once_record_free(r);
    assert_int_equal(once_client_ping(writer, &err), 0);
    /* The refused record was not stored. */
    assert_int_equal(once_client_request(req, TYPE, subject, PURPOSE, "A-2", 0,
                                         &r, &err),
                     -ONCE_ERR_NOT_FOUND);
    once_client_close(writer);
    once_client_close(req);
    free(blob);
    assert_int_equal(e2e_stop(&broker), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_database_still_serves_reads),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
