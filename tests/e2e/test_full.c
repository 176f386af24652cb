/*
 * test_full.c - what a broker whose database fills up does
 * (docs/OPERATIONS.md, Durability).
 *
 * Every request writes to the database too (its log leaf, its evidence,
 * its answer kept for retries), so "reads go on when the map is full"
 * cannot hold. What holds instead: publishes stop at the high-water mark,
 * and requests and revocations go on in the room left. The broker home's
 * once.conf is given a 2 MiB LMDB map with high_water_percent = 50;
 * records with a 60 KiB field reach the mark within a few publishes.
 * After the first STORAGE_FULL:
 *   - REQUESTS requests are answered, each with its receipt, and a
 *     revocation is stored: the room above the mark is theirs;
 *   - the refused record was not stored;
 *   - requests go on until the map itself is full; then they too are
 *     answered STORAGE_FULL (no answer may leave without its leaf), pings
 *     are still answered, and SIGTERM still stops the broker with 0.
 * And a map set beyond the disk's room is warned of at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <cmocka.h>

#include "harness.h"

#define TYPE "scan"
#define PURPOSE "archive"
#define BLOB_BYTES (60 * 1024)
#define MAX_PUBLISHES 200
#define REQUESTS 200
/* Requests to fill the map's last MiB: a few KiB each. */
#define MAX_REQUESTS 20000

static e2e_broker broker;
static e2e_dept archive, reader;

/* Rewrites map_size_mb and high_water_percent in HOME/once.conf. */
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
    while (fgets(line, sizeof(line), in) != NULL) {
        if (strncmp(line, "map_size_mb", 11) == 0)
            fputs("map_size_mb = 2\n", out);
        else if (strncmp(line, "high_water_percent", 18) == 0)
            fputs("high_water_percent = 50\n", out);
        else
            fputs(line, out);
    }
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
                    "--subject", "enterprise", "--fields", "blob,name", NULL) != 0 ||
        e2e_oncectl(&broker, "grant", "add", "--requester", reader.id,
                    "--type", TYPE, "--purpose", PURPOSE, "--fields", "name",
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

/* A signed record of TYPE about subject n with a BLOB_BYTES field. */
static once_record *blob_record(char subject[19], unsigned n,
                                const uint8_t *blob)
{
    once_record *r = NULL;
    once_error err;

    e2e_uscc(subject, n);
    assert_int_equal(once_record_new(&r, TYPE, subject, 1, archive.id, 0, 0,
                                     &err), 0);
    assert_int_equal(once_record_add_field(r, "blob", blob, BLOB_BYTES,
                                           &err), 0);
    assert_int_equal(once_record_add_text(r, "name", "Archive Co.", &err),
                     0);
    assert_int_equal(once_record_sign(r, &archive.kp, &err), 0);
    return r;
}

/* One request for subject's record; a granted one carries its receipt
 * and `fields` disclosures (the one the grant allows, none once revoked). */
static int request(once_client *req, const char *subject, unsigned n,
                   size_t fields, once_error *err)
{
    once_receipt receipt;
    once_record *r = NULL;
    char case_id[32];
    int rc;

    memset(&receipt, 0, sizeof(receipt));
    snprintf(case_id, sizeof(case_id), "A-%u", n);
    rc = once_client_request_ex(req, TYPE, subject, PURPOSE, case_id, 0, 0,
                                &r, &receipt, err);
    if (rc == 0) {
        assert_true(receipt.logged);
        assert_int_equal(once_record_disclosure_count(r), fields);
    }
    once_record_free(r);
    once_receipt_clear(&receipt);
    return rc;
}

static void test_publishes_stop_and_requests_go_on(void **state)
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
        r = blob_record(subject, 990000 + (unsigned)i, blob);
        rc = once_client_publish(writer, r, &err);
        once_record_free(r);
        if (rc != 0)
            break;
    }
    assert_int_equal(rc, -ONCE_ERR_STORAGE_FULL);
    assert_true(i > 0);
    assert_non_null(strstr(err.message, "high_water_percent"));
    assert_non_null(strstr(err.message, "map_size_mb"));
    assert_true(e2e_log_contains(&broker, "publishes are refused"));

    /* The room above the mark is for requests and revocations. */
    for (i = 0; i < REQUESTS; i++)
        if (request(req, first, (unsigned)i, 1, &err) != 0)
            fail_msg("request %d above the high-water mark: %s", i + 1,
                     err.message);
    assert_int_equal(once_record_new_revocation(&r, TYPE, first, 2,
                                                archive.id, &err), 0);
    assert_int_equal(once_record_sign(r, &archive.kp, &err), 0);
    assert_int_equal(once_client_revoke(writer, r, &err), 0);
    once_record_free(r);
    /* The refused record was not stored. */
    assert_int_equal(request(req, subject, 0, 0, &err),
                     -ONCE_ERR_NOT_FOUND);

    /* A full map stops requests too: no answer without its leaf. */
    for (i = 0; i < MAX_REQUESTS; i++)
        if ((rc = request(req, first, REQUESTS + (unsigned)i, 0, &err)) != 0)
            break;
    assert_int_equal(rc, -ONCE_ERR_STORAGE_FULL);
    printf("# %d requests after the revocation filled the map\n", i);
    assert_int_equal(once_client_ping(writer, &err), 0);
    once_client_close(writer);
    once_client_close(req);
    free(blob);
    assert_int_equal(e2e_stop(&broker), 0);
}

/* The map is address space, so nothing stops an operator from setting it
 * beyond the disk; the disk would then fill before the high-water mark
 * stops publishes, and every exchange would fail. onced says so at start
 * (and did not for the 2 MiB map above). */
static void test_map_beyond_disk(void **state)
{
    struct statvfs fs;
    unsigned long long room_mb;

    (void)state;
    assert_false(e2e_log_contains(&broker, "the disk would fill first"));
    assert_int_equal(statvfs(broker.home, &fs), 0);
    room_mb = (unsigned long long)fs.f_bavail * fs.f_frsize >> 20;
    assert_int_equal(e2e_configure(&broker, "map_size_mb = %llu\n"
                                   "high_water_percent = 90\n",
                                   room_mb * 2 + 1024), 0);
    assert_int_equal(e2e_start(&broker, &archive, NULL), 0);
    assert_true(e2e_log_contains(&broker, "the disk would fill first"));
    assert_int_equal(e2e_stop(&broker), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publishes_stop_and_requests_go_on),
        cmocka_unit_test(test_map_beyond_disk),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
