/*
 * make_seeds.c - writes the seed corpora of the fuzz targets.
 *
 *     fuzz-make-seeds OUT_DIR
 *
 * writes OUT_DIR/fuzz_record_parse/, fuzz_envelope/, fuzz_wire_check/,
 * fuzz_notice_batch/,
 * fuzz_bundle/, fuzz_keys_line/, fuzz_tlog_proof/ and fuzz_evidence_open/.
 * The seeds in tests/fuzz/corpus/ were made with it; rerun it when a
 * format changes. Records, checkpoints and proofs are signed with the
 * targets' fixed key (fuzz_key.h), so mutations that spare the signed
 * bytes reach the checks behind the signature. Records get fresh salts and times on each run, so their seeds
 * differ from run to run while meaning the same; the others are the same
 * every time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "envelope.h"
#include "evidence_seal.h"
#include "export_keys.h"
#include "fuzz_key.h"
#include "merkle.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "record_internal.h"
#include "tlog_proof.h"
#include "tlog_tiles.h"

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
    /* What a department sends is also what the broker's decoding takes. */
    if (sign)
        write_seed("fuzz_wire_check", name, buf, len);
    free(buf);
}

/* Seeds of fuzz_wire_check at the edges of its checks: dirty text, a
 * field once.proto does not define, one disclosure too many, and the
 * optional user of a request. */
static void write_wire_check_seeds(void)
{
    Once__Request request = ONCE__REQUEST__INIT;
    uint8_t body[512 + 2 * (ONCE_MAX_FIELDS + 1)];
    size_t len, i;

    request.type = "business-licence";
    request.subject = "91350100M000100Y43";
    request.purpose = "tax-registration";
    request.case_id = "2024-TAX\t\xc2\x9b\xe2\x80\xa8\xff";
    len = once__request__pack(&request, body);
    write_envelope("request-dirty-text.bin", ONCE__KIND__KIND_REQUEST, 6,
                   body, len, true);
    body[len++] = 0x40; /* field 8, not in once.proto */
    body[len++] = 0x01;
    write_envelope("request-unknown-field.bin", ONCE__KIND__KIND_REQUEST, 7,
                   body, len, true);
    request.case_id = "2024-TAX-000124";
    request.user = "zhang.wei \xe5\xbc\xa0\xe4\xbc\x9f"; /* the official */
    len = once__request__pack(&request, body);
    write_envelope("request-user.bin", ONCE__KIND__KIND_REQUEST, 9, body,
                   len, true);
    for (len = 0, i = 0; i <= ONCE_MAX_FIELDS; i++) {
        body[len++] = 0x12; /* an empty disclosure */
        body[len++] = 0x00;
    }
    write_envelope("publish-65-disclosures.bin", ONCE__KIND__KIND_PUBLISH, 8,
                   body, len, true);
}

/* Seeds of the subscription kinds (PROTOCOL.md 4.9): what a subscriber
 * sends, for fuzz_wire_check, and what the broker sends it, for
 * fuzz_notice_batch. */
static void write_subscription_seeds(void)
{
    Once__Subscribe sub = ONCE__SUBSCRIBE__INIT;
    Once__NoticeAck ack = ONCE__NOTICE_ACK__INIT;
    Once__NoticesPull pull = ONCE__NOTICES_PULL__INIT;
    Once__NoticeBatch batch = ONCE__NOTICE_BATCH__INIT;
    Once__Notice n1 = ONCE__NOTICE__INIT, n2 = ONCE__NOTICE__INIT;
    Once__Notice *both[2] = { &n1, &n2 };
    uint8_t body[512];
    size_t len;

    sub.scope = ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT;
    sub.type = "business-licence";
    sub.subject = "91350100M000100Y43";
    len = once__subscribe__pack(&sub, body);
    write_envelope("subscribe-subject.bin", ONCE__KIND__KIND_SUBSCRIBE, 9,
                   body, len, true);
    write_envelope("unsubscribe-subject.bin", ONCE__KIND__KIND_UNSUBSCRIBE,
                   10, body, len, true);
    sub.scope = ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD;
    sub.type = "";
    sub.subject = "";
    len = once__subscribe__pack(&sub, body);
    write_envelope("subscribe-held.bin", ONCE__KIND__KIND_SUBSCRIBE, 11, body,
                   len, true);
    write_envelope("subscriptions-list.bin",
                   ONCE__KIND__KIND_SUBSCRIPTIONS_LIST, 12, NULL, 0, true);
    ack.acked = 4242;
    ack.credit = 256;
    len = once__notice_ack__pack(&ack, body);
    write_envelope("notice-ack.bin", ONCE__KIND__KIND_NOTICE_ACK, 13, body,
                   len, true);
    pull.after = 4000;
    pull.limit = 64;
    len = once__notices_pull__pack(&pull, body);
    write_envelope("notices-pull.bin", ONCE__KIND__KIND_NOTICES_PULL, 14,
                   body, len, true);

    n1.leaf_index = 4243;
    n1.type = "business-licence";
    n1.subject = "91350100M000100Y43";
    n1.version = 2;
    n1.event = ONCE__NOTICE_EVENT__NOTICE_EVENT_REVOKED;
    n2 = n1;
    n2.leaf_index = 4250;
    n2.version = 3;
    n2.event = ONCE__NOTICE_EVENT__NOTICE_EVENT_NEW_VERSION;
    batch.notices = both;
    batch.n_notices = 2;
    batch.scanned_to = 4250;
    len = once__notice_batch__pack(&batch, body);
    write_seed("fuzz_notice_batch", "push-two.bin", body, len);
    batch.n_notices = 0;
    batch.acked = 4242;
    len = once__notice_batch__pack(&batch, body);
    write_seed("fuzz_notice_batch", "ack-answer.bin", body, len);
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

/* A bundle seed of fuzz_bundle: the entry count less one, then `count`
 * entries of the given lengths, each behind a big-endian length of
 * length_bytes bytes. The entry bytes count up, so no two are alike. */
static void write_bundle(const char *name, unsigned length_bytes,
                         const size_t *lengths, unsigned count)
{
    size_t total = 1, pos = 1, i, j;
    uint8_t *buf;
    unsigned k;

    for (i = 0; i < count; i++)
        total += length_bytes + lengths[i];
    if ((buf = malloc(total)) == NULL)
        die("out of memory");
    buf[0] = (uint8_t)(count - 1);
    for (i = 0; i < count; i++) {
        for (k = 0; k < length_bytes; k++)
            buf[pos++] = (uint8_t)(lengths[i] >> (8 * (length_bytes - 1 - k)));
        for (j = 0; j < lengths[i]; j++)
            buf[pos++] = (uint8_t)(i + j);
    }
    write_seed("fuzz_bundle", name, buf, total);
    free(buf);
}

static void write_bundles(void)
{
    /* Lengths over 255 set the high byte of a u16, over 65535 the third
     * byte of a u32 (an envelope longer than any leaf). */
    static const size_t leaves[] = {180, 0, 300, 7};
    static const size_t envelopes[] = {420, 70000};
    static const size_t empty[] = {0};
    size_t ones[TLOG_TILE_WIDTH];
    unsigned i;

    write_bundle("entries-4.bin", TLOG_ENTRY_LENGTH_BYTES, leaves, 4);
    write_bundle("evidence-2.bin", TLOG_EVIDENCE_LENGTH_BYTES, envelopes, 2);
    write_bundle("entries-1-empty.bin", TLOG_ENTRY_LENGTH_BYTES, empty, 1);
    write_bundle("evidence-1-empty.bin", TLOG_EVIDENCE_LENGTH_BYTES, empty,
                 1);
    for (i = 0; i < TLOG_TILE_WIDTH; i++)
        ones[i] = 1;
    write_bundle("entries-256.bin", TLOG_ENTRY_LENGTH_BYTES, ones,
                 TLOG_TILE_WIDTH);
}

/* Evidence bundles sealed to the fixed key, as once-audit opens them:
 * sealing is randomized, so these differ from run to run. */
static void write_sealed(void)
{
    static const uint8_t bundle[] = {0, 0, 0, 3, 'e', 'n', 'v',
                                     0, 0, 0, 0};
    uint8_t out[sizeof(bundle) + EVIDENCE_SEAL_OVERHEAD];

    if (evidence_seal(key.public_key, bundle, sizeof(bundle), out, NULL) < 0)
        die("cannot seal");
    write_seed("fuzz_evidence_open", "bundle-2.sealed", out, sizeof(out));
    if (evidence_seal(key.public_key, bundle, 0, out, NULL) < 0)
        die("cannot seal");
    write_seed("fuzz_evidence_open", "empty.sealed", out,
               EVIDENCE_SEAL_OVERHEAD);
}

/* keys.txt as the broker exports it (through the same writer), one
 * written by hand with the slack the reader allows, and one with a
 * malformed line of each kind among good ones. */
static void write_keys(void)
{
    static const char comments[] =
        "# once department keys, one line per key:\n"
        "#   id public-key-hex valid-from valid-until status name...\n";
    static const char hand_written[] =
        "# written by an auditor from the departments' own keys\n"
        "market-supervision\t5C9C6DF261C9CB840475776AAEFCD944B405328FAB28F9"
        "B3A95EF40490D3DE84  1700000000000 0  active  Market Supervision\r\n"
        "\n"
        "tax-bureau d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332"
        "c9778737 1700000000000 1800000000000 suspended\n";
    static const char malformed[] =
        "public-security 204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82"
        "caba867877c21 1700000000000 0 active Public Security Bureau\n"
        "Bad-Id 204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82caba86787"
        "7c21 1 0 active x\n"
        "short-key 204040e3 1 0 active x\n"
        "negative-time 204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82ca"
        "ba867877c21 -1 0 active x\n"
        "leading-zero 204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82cab"
        "a867877c21 01 0 active x\n"
        "bad-status 204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82caba8"
        "67877c21 1 0 revoked x\n"
        "no-times 204040e364c10f2bec9c1fe500a1cd4c247c89d650a01ed7e82caba868"
        "77c21\n"
        " # not a comment: the '#' is not first";
    static const struct {
        const char *id, *name;
        uint64_t from, until;
        bool suspended;
    } depts[] = {
        {"market-supervision", "Market Supervision Bureau", 1700000000000ull,
         0, false},
        {"public-security", "Public Security Bureau", 1700000000001ull,
         1750000000000ull, true},
        {"tax-bureau", "", 1700000000002ull, 0, false},
    };
    uint8_t seed[32];
    once_keypair dept;
    char text[1024];
    size_t len = sizeof(comments) - 1, i;
    export_key k;
    int n;

    memcpy(text, comments, len);
    for (i = 0; i < sizeof(depts) / sizeof(depts[0]); i++) {
        memset(&k, 0, sizeof(k));
        snprintf(k.id, sizeof(k.id), "%s", depts[i].id);
        memset(seed, (int)i + 1, sizeof(seed));
        if (once_keypair_from_seed(&dept, seed) < 0)
            die("cannot derive a department key");
        memcpy(k.public_key, dept.public_key, sizeof(k.public_key));
        once_keypair_wipe(&dept);
        k.valid_from = depts[i].from;
        k.valid_until = depts[i].until;
        k.suspended = depts[i].suspended;
        k.name = depts[i].name;
        k.name_len = strlen(depts[i].name);
        n = export_keys_line_format(&k, text + len, sizeof(text) - len,
                                    NULL);
        if (n < 0)
            die("cannot format a key line");
        len += (size_t)n;
    }
    write_seed("fuzz_keys_line", "export.txt", (const uint8_t *)text, len);
    write_seed("fuzz_keys_line", "hand-written.txt",
               (const uint8_t *)hand_written, sizeof(hand_written) - 1);
    write_seed("fuzz_keys_line", "malformed.txt", (const uint8_t *)malformed,
               sizeof(malformed) - 1);
}

#define SEED_LEAF_BYTES 6
#define SEED_TREE_MAX 1024

/* A tlog-proof of leaf `index` in a tree of `size` leaves ("leaf" and the
 * index as a u16), signed with the fuzz key as fuzz.example/log. */
static void write_proof(const char *name, uint64_t size, uint64_t index,
                        bool with_extra)
{
    static uint8_t leaves[SEED_TREE_MAX][SEED_LEAF_BYTES];
    static merkle_hash hashes[SEED_TREE_MAX];
    char note[CHECKPOINT_MAX_NOTE], *text;
    tlog_proof proof;
    checkpoint cp;
    size_t text_len;
    uint64_t i;
    int note_len;

    if (size > SEED_TREE_MAX)
        die("cannot build a tree");
    for (i = 0; i < size; i++) {
        memcpy(leaves[i], "leaf", 4);
        leaves[i][4] = (uint8_t)(i >> 8);
        leaves[i][5] = (uint8_t)i;
        merkle_leaf_hash(leaves[i], SEED_LEAF_BYTES, hashes[i]);
    }
    memset(&cp, 0, sizeof(cp));
    snprintf(cp.origin, sizeof(cp.origin), "fuzz.example/log");
    cp.size = size;
    merkle_root(hashes, size, cp.root);
    note_len = checkpoint_sign(&cp, cp.origin, &key, note, sizeof(note),
                               NULL);
    memset(&proof, 0, sizeof(proof));
    if (note_len < 0 ||
        merkle_inclusion_proof(hashes, size, index, proof.hashes,
                               &proof.nhashes) < 0)
        die("cannot build a proof");
    proof.has_extra = with_extra;
    proof.extra = leaves[index];
    proof.extra_len = SEED_LEAF_BYTES;
    proof.index = index;
    proof.note = note;
    proof.note_len = (size_t)note_len;
    if (tlog_proof_format(&proof, &text, &text_len, NULL) < 0)
        die("cannot format a proof");
    write_seed("fuzz_tlog_proof", name, (const uint8_t *)text, text_len);
    free(text);
}

static void write_proofs(void)
{
    write_proof("leaf-3-of-5.tlog-proof", 5, 3, true);
    write_proof("leaf-0-of-1.tlog-proof", 1, 0, true);
    write_proof("leaf-777-of-1000-no-extra.tlog-proof", 1000, 777, false);
}

int main(int argc, char **argv)
{
    static const char *const corpora[] = {
        "fuzz_record_parse", "fuzz_envelope", "fuzz_wire_check",
        "fuzz_bundle", "fuzz_keys_line", "fuzz_tlog_proof",
        "fuzz_evidence_open", "fuzz_notice_batch"};
    size_t i;
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
    for (i = 0; i < sizeof(corpora) / sizeof(corpora[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", out_dir, corpora[i]);
        make_dir(path);
    }

    lic = licence();
    per = person();
    rev = revocation();
    write_record("licence.bin", lic);
    write_record("person.bin", per);
    write_record("revocation.bin", rev);
    if (once_record_new_revocation_reason(&copy, "business-licence",
                                          "91350100M000100Y43", 3,
                                          "market-supervision",
                                          "business deregistered", NULL) < 0 ||
        once_record_sign(copy, &key, NULL) < 0)
        die("cannot build a revocation with a reason");
    write_record("revocation-reason.bin", copy);
    once_record_free(copy);
    if (once_record_disclose(lic, one, 1, &copy, NULL) < 0)
        die("cannot disclose");
    write_record("licence-one-field.bin", copy);
    once_record_free(copy);
    if (once_record_disclose(per, NULL, 0, &copy, NULL) < 0)
        die("cannot disclose");
    write_record("person-no-field.bin", copy);
    once_record_free(copy);

    write_envelopes(lic, rev);
    write_wire_check_seeds();
    write_subscription_seeds();
    write_bundles();
    write_keys();
    write_proofs();
    write_sealed();
    once_record_free(lic);
    once_record_free(per);
    once_record_free(rev);
    once_keypair_wipe(&key);
    return 0;
}
