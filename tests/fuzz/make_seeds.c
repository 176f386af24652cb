/*
 * make_seeds.c - writes the seed corpora of the fuzz targets.
 *
 *     fuzz-make-seeds OUT_DIR
 *
 * writes OUT_DIR/fuzz_record_parse/ and OUT_DIR/fuzz_envelope/. The seeds
 * in tests/fuzz/corpus/ were made with it; rerun it when the wire format
 * changes. Records are signed with the targets' fixed key (fuzz_key.h), so
 * mutations that spare the signed bytes reach the disclosure checks.
 * Records get fresh salts and times on each run, so the output differs from
 * run to run while meaning the same.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "envelope.h"
#include "fuzz_key.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "record_internal.h"

static once_keypair key;
static const char *out_dir;

static void die(const char *what)
{
    fprintf(stderr, "fuzz-make-seeds: %s\n", what);
    exit(1);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die("cannot create a directory");
}

static void write_seed(const char *corpus, const char *name,
                       const uint8_t *data, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, corpus, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("cannot write a seed");
}

static once_record *licence(void)
{
    static const char *const names[] = {"name", "legal_representative",
                                        "address", "registered_capital"};
    static const char *const values[] = {
        "Fuzhou Example Technology Co., Ltd.", "Zhang San",
        "No. 1 Example Road, Gulou District, Fuzhou", "1000000 CNY"};
    once_record *r;
    size_t i;

    if (once_record_new(&r, "business-licence", "91350100M000100Y43", 1,
                        "market-supervision", 1700000000000ull,
                        1900000000000ull, NULL) < 0)
        die("cannot build a record");
    for (i = 0; i < 4; i++)
        if (once_record_add_text(r, names[i], values[i], NULL) < 0)
            die("cannot add a field");
    if (once_record_sign(r, &key, NULL) < 0)
        die("cannot sign");
    return r;
}

static once_record *person(void)
{
    static const uint8_t photo[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a,
                                    0x0a, 0x00, 0x00, 0x00, 0x0d};
    once_record *r;

    if (once_record_new(&r, "residence", "11010519491231002X", 3,
                        "public-security", 0, 0, NULL) < 0 ||
        once_record_add_text(r, "address", "Chaoyang, Beijing", NULL) < 0 ||
        once_record_add_field(r, "photo", photo, sizeof(photo), NULL) < 0 ||
        once_record_add_field(r, "note", NULL, 0, NULL) < 0 ||
        once_record_sign(r, &key, NULL) < 0)
        die("cannot build a record");
    return r;
}

static once_record *revocation(void)
{
    once_record *r;

    if (once_record_new_revocation(&r, "business-licence",
                                   "91350100M000100Y43", 2,
                                   "market-supervision", NULL) < 0 ||
        once_record_sign(r, &key, NULL) < 0)
        die("cannot build a revocation");
    return r;
}

static void write_record(const char *name, const once_record *r)
{
    uint8_t *buf;
    size_t len;

    if (once_record_serialize(r, &buf, &len, NULL) < 0)
        die("cannot serialize");
    write_seed("fuzz_record_parse", name, buf, len);
    free(buf);
}

static void write_envelope(const char *name, Once__Kind kind, uint64_t seq,
                           const uint8_t *body, size_t body_len, bool sign)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES], *buf;
    size_t len;

    e.version = ENVELOPE_VERSION;
    e.sender = sign ? "market-supervision" : "once-broker";
    e.session = 0x1234567890abcdefull;
    e.seq = seq;
    e.sent_at = 1700000000000ull + seq;
    e.kind = kind;
    e.reply_to = sign ? 0 : seq;
    e.body.data = (uint8_t *)body;
    e.body.len = body_len;
    if (sign && envelope_sign(&e, &key, sig) < 0)
        die("cannot sign an envelope");
    if (envelope_pack(&e, &buf, &len) < 0)
        die("cannot pack an envelope");
    write_seed("fuzz_envelope", name, buf, len);
    free(buf);
}

static void write_envelopes(once_record *lic, once_record *rev)
{
    static const char *const granted[] = {"name", "address"};
    Once__Request request = ONCE__REQUEST__INIT;
    Once__Response response = ONCE__RESPONSE__INIT;
    Once__Revoke revoke = ONCE__REVOKE__INIT;
    Once__Error error = ONCE__ERROR__INIT;
    record_publish_view view;
    once_record *copy;
    uint8_t *body;
    size_t len;

    if (once_record_serialize(lic, &body, &len, NULL) < 0)
        die("cannot serialize");
    write_envelope("publish.bin", ONCE__KIND__KIND_PUBLISH, 1, body, len,
                   true);
    free(body);

    if (record_publish_view_init(&view, rev, NULL) < 0)
        die("cannot view the revocation");
    revoke.record = &view.record;
    len = once__revoke__get_packed_size(&revoke);
    if ((body = malloc(len)) == NULL)
        die("out of memory");
    once__revoke__pack(&revoke, body);
    write_envelope("revoke.bin", ONCE__KIND__KIND_REVOKE, 2, body, len, true);
    free(body);

    request.type = "business-licence";
    request.subject = "91350100M000100Y43";
    request.purpose = "tax-registration";
    request.case_id = "2024-TAX-000123";
    len = once__request__get_packed_size(&request);
    if ((body = malloc(len)) == NULL)
        die("out of memory");
    once__request__pack(&request, body);
    write_envelope("request.bin", ONCE__KIND__KIND_REQUEST, 3, body, len,
                   true);
    free(body);

    if (once_record_disclose(lic, granted, 2, &copy, NULL) < 0 ||
        record_publish_view_init(&view, copy, NULL) < 0)
        die("cannot disclose");
    response.type = "business-licence";
    response.subject = "91350100M000100Y43";
    response.version = 1;
    response.status = ONCE__RECORD_STATUS__STATUS_VALID;
    response.record = &view.record;
    response.n_disclosures = view.publish.n_disclosures;
    response.disclosures = view.publish.disclosures;
    len = once__response__get_packed_size(&response);
    if ((body = malloc(len)) == NULL)
        die("out of memory");
    once__response__pack(&response, body);
    write_envelope("response.bin", ONCE__KIND__KIND_RESPONSE, 3, body, len,
                   false);
    free(body);
    once_record_free(copy);

    error.code = ONCE__ERROR_CODE__ERROR_NO_GRANT;
    error.message = "no grant for this requester, type and purpose";
    len = once__error__get_packed_size(&error);
    if ((body = malloc(len)) == NULL)
        die("out of memory");
    once__error__pack(&error, body);
    write_envelope("error.bin", ONCE__KIND__KIND_ERROR, 4, body, len, false);
    free(body);

    write_envelope("ping.bin", ONCE__KIND__KIND_PING, 5, NULL, 0, true);
}

int main(int argc, char **argv)
{
    static const char *const one[] = {"address"};
    once_record *lic, *per, *rev, *copy;
    char path[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-make-seeds OUT_DIR\n");
        return 2;
    }
    if (once_init() < 0)
        die("cannot initialize libsodium");
    fuzz_key(&key);
    out_dir = argv[1];
    make_dir(out_dir);
    snprintf(path, sizeof(path), "%s/fuzz_record_parse", out_dir);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/fuzz_envelope", out_dir);
    make_dir(path);

    lic = licence();
    per = person();
    rev = revocation();
    write_record("licence.bin", lic);
    write_record("person.bin", per);
    write_record("revocation.bin", rev);
    if (once_record_disclose(lic, one, 1, &copy, NULL) < 0)
        die("cannot disclose");
    write_record("licence-one-field.bin", copy);
    once_record_free(copy);
    if (once_record_disclose(per, NULL, 0, &copy, NULL) < 0)
        die("cannot disclose");
    write_record("person-no-field.bin", copy);
    once_record_free(copy);

    write_envelopes(lic, rev);
    once_record_free(lic);
    once_record_free(per);
    once_record_free(rev);
    once_keypair_wipe(&key);
    return 0;
}
