/*
 * make_test_log.c - end-to-end test of the exchange log's export and of
 * once-audit, and the generator of large logs for measuring it.
 *
 * Without arguments it is a test: it builds a log in a temporary LMDB
 * environment the way the broker's writer does (real department keys, real
 * signed envelopes of every kind, granted and refused, a BAD_SIGNATURE
 * refusal, group commits each followed by a signed checkpoint), exports it
 * in two steps and at once, and runs $ONCE_AUDIT against it: verify must
 * pass, and after one byte is flipped in a leaf, a hash tile, a checkpoint
 * signature or an evidence envelope (each in a copy) verify must fail and
 * every FAIL line must name that leaf, tile or checkpoint. prove and
 * check-proof must round-trip, subject must find exactly one subject's
 * leaves, consistency must accept an older checkpoint and refuse a forged
 * one. An export with its evidence sealed to an auditor must verify with
 * that auditor's key and with no other. A log whose leaves hold tabs,
 * newlines, ESC and a bidi override (as a forged or old log may) must come
 * out of subject, verify and check-proof escaped, with no forged row.
 *
 *   make_test_log --bench N DIR   builds a log of N leaves and exports it to
 *                                 DIR/export (DIR/broker.pub, DIR/audit.key)
 *                                 for timing `once-audit verify`.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit_hash.h"
#include "auditlog.h"
#include "checkpoint.h"
#include "envelope.h"
#include "export.h"
#include "once.pb-c.h"
#include "policy.h"
#include "store.h"
#include "tlog_tiles.h"

#define ORIGIN "once.test/exchange-log"
#define NSUBJECTS 8
#define LICENCE "business-licence"
#define TAX_REG "tax-registration"

enum { MARKET, TAX, POLICE, NDEPTS };

typedef struct dept {
    const char *id;
    const char *name;
    once_keypair kp;
    uint64_t session, seq;
} dept;

typedef struct subject_state {
    char code[19];
    uint64_t licence_version, tax_version;
    uint8_t licence_digest[32];
} subject_state;

typedef struct gen {
    char home[512];
    store s;
    auditlog log;
    once_keypair broker;
    uint8_t audit_key[AUDIT_KEY_BYTES];
    dept depts[NDEPTS];
    subject_state subj[NSUBJECTS];
    MDB_txn *txn;
    uint64_t n, in_txn, group;
    int bench;
    uint64_t *expect; /* leaves about (LICENCE, subject 0) */
    size_t nexpect, expect_cap;
} gen;

static int failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "make_test_log:%d: CHECK failed: %s: ",         \
                    __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static void die(const char *what, const once_error *err)
    __attribute__((noreturn));

static void die(const char *what, const once_error *err)
{
    fprintf(stderr, "make_test_log: %s: %s\n", what,
            err ? err->message : strerror(errno));
    exit(1);
}

/* ---- building the log ---- */

static void make_subjects(gen *g)
{
    size_t i;
    char check;

    for (i = 0; i < NSUBJECTS; i++) {
        snprintf(g->subj[i].code, sizeof(g->subj[i].code),
                 "91350100MA2Y%04zu0", i + 1);
        g->subj[i].code[17] = '\0';
        if (once_uscc_check_char(g->subj[i].code, &check) < 0)
            die("uscc check char", NULL);
        g->subj[i].code[17] = check;
        g->subj[i].code[18] = '\0';
    }
}

static void begin(gen *g)
{
    once_error err;

    if (store_begin(&g->s, 0, &g->txn, &err) < 0)
        die("store_begin", &err);
    g->in_txn = 0;
}

/* Ends a group commit the way the writer does: sign, then commit. */
static void commit(gen *g)
{
    char note[CHECKPOINT_MAX_NOTE];
    once_error err;

    if (auditlog_sign_checkpoint(g->txn, &g->log, ORIGIN, &g->broker, note,
                                 sizeof(note), &err) < 0)
        die("sign checkpoint", &err);
    if (store_commit(g->txn, &err) < 0)
        die("commit", &err);
    g->txn = NULL;
}

static void envelope(gen *g, dept *d, Once__Kind kind, const uint8_t *body,
                     size_t body_len, int bad_signature, uint8_t **out,
                     size_t *out_len)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES];

    e.version = ENVELOPE_VERSION;
    e.sender = (char *)d->id;
    e.session = d->session;
    e.seq = ++d->seq;
    e.sent_at = once_now_ms();
    e.kind = kind;
    e.body.data = (uint8_t *)body;
    e.body.len = body_len;
    if (envelope_sign(&e, &d->kp, sig) < 0)
        die("envelope_sign", NULL);
    if (bad_signature)
        sig[7] ^= 0x20;
    if (envelope_pack(&e, out, out_len) < 0)
        die("envelope_pack", NULL);
    (void)g;
}

/* Appends one leaf with its evidence; commits when the group is full. */
static void append(gen *g, Once__LogLeaf *leaf, const uint8_t *evidence,
                   size_t evidence_len, const subject_state *about)
{
    uint8_t digest[32], leaf_bytes[AUDITLOG_MAX_LEAF];
    once_error err;
    uint64_t index;
    size_t len;

    crypto_hash_sha256(digest, evidence, evidence_len);
    leaf->time = once_now_ms();
    leaf->envelope_digest.data = digest;
    leaf->envelope_digest.len = sizeof(digest);
    len = once__log_leaf__get_packed_size(leaf);
    once__log_leaf__pack(leaf, leaf_bytes);
    if (g->txn == NULL)
        begin(g);
    if (auditlog_append(g->txn, &g->log, leaf_bytes, len, evidence,
                        evidence_len, &index, &err) < 0)
        die("auditlog_append", &err);
    if (index != g->n)
        die("auditlog_append gave an unexpected index", NULL);
    if (about == &g->subj[0] && strcmp(leaf->record_type, LICENCE) == 0 &&
        leaf->subject_hash.len > 0) {
        if (g->nexpect == g->expect_cap) {
            g->expect_cap = g->expect_cap ? 2 * g->expect_cap : 64;
            g->expect = realloc(g->expect, g->expect_cap * sizeof(uint64_t));
            if (g->expect == NULL)
                die("realloc", NULL);
        }
        g->expect[g->nexpect++] = index;
    }
    g->n++;
    if (++g->in_txn >= g->group) {
        commit(g);
        /* Vary the group size like a broker under changing load. */
        if (!g->bench)
            g->group = g->group * 7 % 61 + 1;
    }
}

static void publish(gen *g, dept *d, const char *type, subject_state *su,
                    int revoke, int refusal)
{
    Once__LogLeaf leaf = ONCE__LOG_LEAF__INIT;
    uint8_t hash[32], digest[32], *body, *ev;
    size_t body_len, ev_len;
    once_record *r;
    once_error err;
    Once__Publish *p;
    uint64_t version = strcmp(type, LICENCE) == 0 ? su->licence_version + 1
                                                  : su->tax_version + 1;

    if (revoke) {
        if (once_record_new_revocation(&r, type, su->code, version, d->id,
                                       &err) < 0)
            die("record", &err);
    } else {
        if (once_record_new(&r, type, su->code, version, d->id,
                            once_now_ms(), 0, &err) < 0 ||
            once_record_add_text(r, "name", "Fuzhou Example Trading Co.",
                                 &err) < 0 ||
            once_record_add_text(r, "address", "1 Wuyi Road, Fuzhou",
                                 &err) < 0)
            die("record", &err);
    }
    if (once_record_sign(r, &d->kp, &err) < 0 ||
        once_record_serialize(r, &body, &body_len, &err) < 0)
        die("record", &err);
    once_record_free(r);
    /* A revocation serializes as a Publish without disclosures, which is
     * the same bytes as a Revoke holding the record. */
    p = once__publish__unpack(NULL, body_len, body);
    if (p == NULL || p->record == NULL)
        die("unpack own publish", NULL);
    crypto_hash_sha256(digest, p->record->header.data, p->record->header.len);
    once__publish__free_unpacked(p, NULL);
    envelope(g, d, revoke ? ONCE__KIND__KIND_REVOKE : ONCE__KIND__KIND_PUBLISH,
             body, body_len, 0, &ev, &ev_len);
    audit_subject_hash(g->audit_key, type, su->code, hash);
    leaf.kind = revoke ? ONCE__KIND__KIND_REVOKE : ONCE__KIND__KIND_PUBLISH;
    leaf.department = (char *)d->id;
    leaf.record_type = (char *)type;
    leaf.subject_hash.data = hash;
    leaf.subject_hash.len = sizeof(hash);
    leaf.record_version = version;
    leaf.record_digest.data = digest;
    leaf.record_digest.len = sizeof(digest);
    if (refusal) {
        leaf.decision = ONCE__DECISION__DECISION_REFUSED;
        leaf.error = ONCE__ERROR_CODE__ERROR_NOT_ISSUER;
    } else {
        leaf.decision = ONCE__DECISION__DECISION_GRANTED;
        if (strcmp(type, LICENCE) == 0) {
            su->licence_version = version;
            memcpy(su->licence_digest, digest, 32);
        } else {
            su->tax_version = version;
        }
    }
    append(g, &leaf, ev, ev_len, su);
    free(body);
    free(ev);
}

static void request(gen *g, dept *d, subject_state *su, const char *purpose,
                    const char *case_id, Once__ErrorCode refusal)
{
    Once__LogLeaf leaf = ONCE__LOG_LEAF__INIT;
    Once__Request q = ONCE__REQUEST__INIT;
    uint8_t hash[32], *body, *ev;
    size_t body_len, ev_len;
    int bad_signature = refusal == ONCE__ERROR_CODE__ERROR_BAD_SIGNATURE;

    q.type = LICENCE;
    q.subject = su->code;
    q.purpose = (char *)purpose;
    q.case_id = (char *)case_id;
    body_len = once__request__get_packed_size(&q);
    body = malloc(body_len);
    if (body == NULL)
        die("malloc", NULL);
    once__request__pack(&q, body);
    envelope(g, d, ONCE__KIND__KIND_REQUEST, body, body_len, bad_signature,
             &ev, &ev_len);
    leaf.kind = ONCE__KIND__KIND_REQUEST;
    leaf.department = (char *)d->id;
    /* A broker refusing a bad signature never decoded the body. */
    if (!bad_signature) {
        audit_subject_hash(g->audit_key, LICENCE, su->code, hash);
        leaf.record_type = LICENCE;
        leaf.subject_hash.data = hash;
        leaf.subject_hash.len = sizeof(hash);
        leaf.purpose = (char *)purpose;
        leaf.case_id = (char *)case_id;
    }
    if (refusal != ONCE__ERROR_CODE__ERROR_NONE) {
        leaf.decision = ONCE__DECISION__DECISION_REFUSED;
        leaf.error = refusal;
    } else {
        leaf.decision = ONCE__DECISION__DECISION_GRANTED;
        leaf.record_version = su->licence_version;
        leaf.record_digest.data = su->licence_digest;
        leaf.record_digest.len = 32;
    }
    append(g, &leaf, ev, ev_len, su);
    free(body);
    free(ev);
}

/* Leaf i of the schedule: every subject is published first, then a mix
 * that is mostly granted requests, as in a real exchange. */
static void step(gen *g)
{
    uint64_t i = g->n;
    subject_state *su = &g->subj[(i / 16) % NSUBJECTS];
    char case_id[32];

    if (i < NSUBJECTS) {
        publish(g, &g->depts[MARKET], LICENCE, &g->subj[i], 0, 0);
        return;
    }
    snprintf(case_id, sizeof(case_id), "TAX-2024-%06" PRIu64, i);
    switch (i % 16) {
    case 0: publish(g, &g->depts[MARKET], LICENCE, su, 0, 0); break;
    case 1: publish(g, &g->depts[TAX], TAX_REG, su, 0, 0); break;
    case 2: publish(g, &g->depts[MARKET], LICENCE, su, 1, 0); break;
    case 3:
        request(g, &g->depts[TAX], su, "tax-registration", case_id,
                ONCE__ERROR_CODE__ERROR_BAD_SIGNATURE);
        break;
    case 4:
        request(g, &g->depts[POLICE], su, "curiosity", "NONE-1",
                ONCE__ERROR_CODE__ERROR_NO_GRANT);
        break;
    case 5: publish(g, &g->depts[TAX], LICENCE, su, 0, 1); break;
    default:
        request(g, &g->depts[TAX], su, "tax-registration", case_id,
                ONCE__ERROR_CODE__ERROR_NONE);
    }
}

static void open_log(gen *g, const char *dir, size_t map_size)
{
    static const char *const ids[NDEPTS] = {"market-supervision",
                                             "tax-bureau", "public-security"};
    static const char *const names[NDEPTS] = {
        "Market Supervision Bureau", "Tax Bureau", "Public Security Bureau"};
    char path[600], pub[620];
    uint8_t seed[32];
    once_error err;
    size_t i;

    memset(g, 0, sizeof(*g));
    snprintf(g->home, sizeof(g->home), "%s", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        die(dir, NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        die(path, NULL);
    if (store_open(&g->s, path, map_size, &err) < 0)
        die("store_open", &err);
    if (auditlog_open(&g->log, &g->s, &err) < 0)
        die("auditlog_open", &err);
    memset(seed, 0xb0, sizeof(seed));
    once_keypair_from_seed(&g->broker, seed);
    snprintf(path, sizeof(path), "%s/broker.key", dir);
    snprintf(pub, sizeof(pub), "%s/broker.pub", dir);
    if (once_keypair_save(&g->broker, path, pub, &err) < 0)
        die("save broker key", &err);
    /* The audit key file has the secret key file format. */
    memset(seed, 0xa7, sizeof(seed));
    {
        once_keypair ak;

        once_keypair_from_seed(&ak, seed);
        snprintf(path, sizeof(path), "%s/audit.key", dir);
        if (once_keypair_save(&ak, path, NULL, &err) < 0)
            die("save audit key", &err);
        once_keypair_wipe(&ak);
    }
    if (audit_key_load(g->audit_key, path, &err) < 0)
        die("load audit key", &err);
    if (memcmp(g->audit_key, seed, 32) != 0)
        die("audit key round trip", NULL);
    begin(g);
    for (i = 0; i < NDEPTS; i++) {
        g->depts[i].id = ids[i];
        g->depts[i].name = names[i];
        memset(seed, (int)(0x10 + i), sizeof(seed));
        once_keypair_from_seed(&g->depts[i].kp, seed);
        randombytes_buf(&g->depts[i].session, sizeof(uint64_t));
        g->depts[i].session |= 1;
        if (policy_department_add(g->txn, &g->s, ids[i], names[i],
                                  g->depts[i].kp.public_key, &err) < 0)
            die("policy_department_add", &err);
    }
    commit(g); /* the broker's first checkpoint, of the empty tree */
    make_subjects(g);
    g->group = 1;
}

static void grow(gen *g, uint64_t to)
{
    while (g->n < to)
        step(g);
    if (g->txn != NULL)
        commit(g);
}

static int export_with(gen *g, const char *dir, uint64_t start,
                       const uint8_t *seal_to, once_error *err)
{
    export_options opt;

    memset(&opt, 0, sizeof(opt));
    opt.start = start;
    opt.seal_to = seal_to;
    return export_log(&g->s, &g->log, dir, &opt, err);
}

static void export_to(gen *g, const char *dir, uint64_t start)
{
    once_error err;

    if (export_with(g, dir, start, NULL, &err) < 0)
        die("export_log", &err);
}

/* ---- running once-audit ---- */

static char *audit_path;
static char tmp_root[256];

/* Runs once-audit with the NULL-terminated arguments; its stdout and
 * stderr land in *out (malloc'd). Returns the exit status. */
static int run(char **out, ...)
{
    char *argv[16], outfile[300];
    va_list ap;
    int status, fd, argc = 0;
    pid_t pid;
    FILE *f;
    long len;

    argv[argc++] = audit_path;
    va_start(ap, out);
    while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    snprintf(outfile, sizeof(outfile), "%s/audit.out", tmp_root);
    pid = fork();
    if (pid < 0)
        die("fork", NULL);
    if (pid == 0) {
        fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(audit_path, argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid", NULL);
    f = fopen(outfile, "r");
    if (f == NULL)
        die(outfile, NULL);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = calloc(1, (size_t)len + 1);
    if (*out == NULL || fread(*out, 1, (size_t)len, f) != (size_t)len)
        die("read output", NULL);
    fclose(f);
    /* A sanitizer build reports memory errors here, whatever the status. */
    CHECK(strstr(*out, "Sanitizer") == NULL &&
              strstr(*out, "runtime error:") == NULL,
          "sanitizer report from once-audit %s: %s", argv[1], *out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Every FAIL line names `token`; at least one FAIL line exists. */
static int fails_all_name(const char *out, const char *token)
{
    const char *p = out;
    int seen = 0;

    while ((p = strstr(p, "FAIL ")) != NULL) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];

        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        if (strstr(line, token) == NULL) {
            fprintf(stderr, "make_test_log: FAIL line without %s: %s\n",
                    token, line);
            return 0;
        }
        seen = 1;
        p += n;
    }
    return seen;
}

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "make_test_log: command failed: %s\n", cmd);
        exit(1);
    }
}

static int same_tree(const char *a, const char *b)
{
    char cmd[700];

    snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL)
        die(path, NULL);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die(path, NULL);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path, NULL);
}

/* Offset of entry `at` in a bundle with len_bytes-byte lengths. */
static size_t entry_offset(const uint8_t *data, unsigned at, int len_bytes,
                           size_t *entry_len)
{
    size_t pos = 0, n = 0;
    unsigned i;
    int j;

    for (i = 0; i <= at; i++) {
        for (n = 0, j = 0; j < len_bytes; j++)
            n = (n << 8) | data[pos + (size_t)j];
        pos += (size_t)len_bytes;
        if (i < at)
            pos += n;
    }
    *entry_len = n;
    return pos;
}

static void bundle_path(char *out, size_t cap, const char *dir,
                        const char *prefix, uint64_t size, uint64_t index)
{
    char rel[TLOG_PATH_MAX];
    uint64_t b = index / TLOG_TILE_WIDTH;

    tlog_tile_path(rel, sizeof(rel), prefix, b, tlog_tile_width(size, 0, b));
    snprintf(out, cap, "%s/%s", dir, rel);
}

static void flip_in_bundle(const char *dir, const char *prefix, int len_bytes,
                           uint64_t size, uint64_t index, int at_end)
{
    char path[600];
    size_t len, elen, off;
    uint8_t *data;

    bundle_path(path, sizeof(path), dir, prefix, size, index);
    data = slurp(path, &len);
    off = entry_offset(data, (unsigned)(index % TLOG_TILE_WIDTH), len_bytes,
                       &elen);
    data[off + (at_end ? elen - 1 : elen / 2)] ^= 0x01;
    spit(path, data, len);
    free(data);
}

/* Evidence sealed to an auditor's key: verify opens it with that key,
 * and without it, or with another key, checks nothing of it and fails. */
static void test_sealed_export(gen *g, const char *pub)
{
    char dir[300], key[320], key_pub[320], other[320], path[600];
    once_keypair auditor, stranger;
    once_error err;
    uint8_t *data;
    size_t len;
    char *out;
    int rc;

    snprintf(dir, sizeof(dir), "%s/export-sealed", tmp_root);
    snprintf(key, sizeof(key), "%s/auditor.key", tmp_root);
    snprintf(key_pub, sizeof(key_pub), "%s/auditor.key.pub", tmp_root);
    snprintf(other, sizeof(other), "%s/other-auditor.key", tmp_root);
    once_keypair_generate(&auditor);
    once_keypair_generate(&stranger);
    if (once_keypair_save(&auditor, key, key_pub, &err) < 0 ||
        once_keypair_save(&stranger, other, NULL, &err) < 0)
        die("save auditor keys", &err);
    if (export_with(g, dir, 0, auditor.public_key, &err) < 0)
        die("sealed export", &err);
    snprintf(path, sizeof(path), "%s/evidence", dir);
    CHECK(access(path, F_OK) < 0, "no plain evidence beside sealed");

    rc = run(&out, "verify", dir, "--key", pub, "--evidence-key", key, NULL);
    CHECK(rc == 0 && strstr(out, "verify: OK") != NULL &&
              strstr(out, "evidence: 700 envelopes") != NULL,
          "sealed evidence opens with the auditor's key: %s", out);
    free(out);
    rc = run(&out, "verify", dir, "--key", pub, NULL);
    CHECK(rc == 1 && strstr(out, "FAIL evidence-sealed: the evidence is "
                                 "sealed to the auditor key") != NULL &&
              strstr(out, "evidence: not checked") != NULL,
          "sealed evidence without a key is not checked: %s", out);
    free(out);
    rc = run(&out, "verify", dir, "--key", pub, "--evidence-key", other,
             NULL);
    CHECK(rc == 1 && strstr(out, "not to the --evidence-key's") != NULL &&
              strstr(out, "evidence: not checked") != NULL,
          "another auditor's key is refused: %s", out);
    free(out);
    rc = run(&out, "verify", dir, "--key", pub, "--evidence-key", pub, NULL);
    CHECK(rc == 2, "a public key is no --evidence-key: %s", out);
    free(out);

    /* A sealed bundle changed: it no longer opens, and says so. */
    snprintf(path, sizeof(path), "%s/evidence-sealed/001", dir);
    data = slurp(path, &len);
    data[len / 2] ^= 0x01;
    spit(path, data, len);
    free(data);
    rc = run(&out, "verify", dir, "--key", pub, "--evidence-key", key, NULL);
    CHECK(rc == 1 && fails_all_name(out, "evidence-sealed/001: does not "
                                         "open with this auditor key"),
          "a changed sealed bundle is named: %s", out);
    free(out);
    once_keypair_wipe(&auditor);
    once_keypair_wipe(&stranger);
}

static void test_export_and_audit(void)
{
    char home[300], e1[300], e2[300], e3[300], c[300], pub[320], ak[320];
    char old[320], path[600], subject_arg[32], out_proof[320];
    char *out, *p;
    uint8_t *data;
    size_t len;
    uint64_t k = 300, n = 700, count, i;
    gen *g = calloc(1, sizeof(*g));
    int rc;

    snprintf(home, sizeof(home), "%s/home", tmp_root);
    snprintf(e1, sizeof(e1), "%s/export", tmp_root);
    snprintf(e2, sizeof(e2), "%s/export-at-once", tmp_root);
    snprintf(e3, sizeof(e3), "%s/export-range", tmp_root);
    snprintf(old, sizeof(old), "%s/old.checkpoint", tmp_root);
    open_log(g, home, 64u << 20);
    snprintf(pub, sizeof(pub), "%s/broker.pub", home);
    snprintf(ak, sizeof(ak), "%s/audit.key", home);

    /* Export the first k leaves, keep their checkpoint, grow, extend. */
    grow(g, k);
    export_to(g, e1, 0);
    snprintf(path, sizeof(path), "%s/checkpoint", e1);
    data = slurp(path, &len);
    CHECK(strstr((char *)data, "\n300\n") != NULL, "first export at 300");
    spit(old, data, len);
    free(data);
    grow(g, n);
    export_to(g, e1, k);
    export_to(g, e2, 0);
    CHECK(same_tree(e1, e2), "an extended export equals one made at once");

    rc = run(&out, "verify", e1, "--key", pub, "--audit-key", ak, NULL);
    CHECK(rc == 0 && strstr(out, "verify: OK") != NULL, "clean verify: %s",
          out);
    free(out);
    rc = run(&out, "verify", e1, "--key", pub, "--threads", "1", NULL);
    CHECK(rc == 0, "single-threaded verify: %s", out);
    free(out);

    /* A flipped byte in a leaf. */
    snprintf(c, sizeof(c), "%s/copy-leaf", tmp_root);
    sh("cp -a '%s' '%s'", e1, c);
    flip_in_bundle(c, "tile/entries", 2, n, 300, 0);
    rc = run(&out, "verify", c, "--key", pub, "--audit-key", ak, NULL);
    CHECK(rc == 1 && fails_all_name(out, "leaf 300:") &&
              strstr(out, "FAIL leaf 300: entry was changed") != NULL,
          "changed leaf named: %s", out);
    free(out);

    /* A flipped byte in a hash tile. */
    snprintf(c, sizeof(c), "%s/copy-tile", tmp_root);
    sh("cp -a '%s' '%s'", e1, c);
    snprintf(path, sizeof(path), "%s/tile/0/000", c);
    data = slurp(path, &len);
    data[5 * 32 + 9] ^= 0x80;
    spit(path, data, len);
    free(data);
    rc = run(&out, "verify", c, "--key", pub, NULL);
    CHECK(rc == 1 && fails_all_name(out, "tile/0/000: hash 5 "),
          "changed tile named: %s", out);
    free(out);

    /* A flipped byte in a checkpoint's signature. */
    snprintf(c, sizeof(c), "%s/copy-checkpoint", tmp_root);
    sh("cp -a '%s' '%s'", e1, c);
    snprintf(path, sizeof(path), "%s/checkpoints/300", c);
    data = slurp(path, &len);
    data[len - 20] = data[len - 20] == 'A' ? 'B' : 'A';
    spit(path, data, len);
    free(data);
    rc = run(&out, "verify", c, "--key", pub, NULL);
    CHECK(rc == 1 && fails_all_name(out, "checkpoints/300:"),
          "changed checkpoint named: %s", out);
    free(out);

    /* A flipped byte in an evidence envelope (its signature's last). */
    snprintf(c, sizeof(c), "%s/copy-evidence", tmp_root);
    sh("cp -a '%s' '%s'", e1, c);
    flip_in_bundle(c, "evidence", 4, n, 42, 1);
    rc = run(&out, "verify", c, "--key", pub, NULL);
    CHECK(rc == 1 && fails_all_name(out, "leaf 42:"),
          "changed evidence named: %s", out);
    free(out);

    /* prove and check-proof. */
    snprintf(out_proof, sizeof(out_proof), "%s/leaf.tlog-proof", tmp_root);
    rc = run(&out, "prove", e1, "123", "-o", out_proof, NULL);
    CHECK(rc == 0, "prove: %s", out);
    free(out);
    data = slurp(out_proof, &len);
    CHECK(strncmp((char *)data, "c2sp.org/tlog-proof@v1\nextra ", 29) == 0 &&
              strstr((char *)data, "\nindex 123\n") != NULL &&
              strstr((char *)data, "\n\n" ORIGIN "\n700\n") != NULL,
          "proof format: %s", data);
    rc = run(&out, "check-proof", out_proof, "--key", pub, NULL);
    CHECK(rc == 0 && strstr(out, "proof: OK: leaf 123") != NULL,
          "check-proof: %s", out);
    free(out);
    rc = run(&out, "check-proof", out_proof, "--key", pub, "--dir", e1, NULL);
    CHECK(rc == 0, "check-proof --dir: %s", out);
    free(out);
    /* A proof hash changed (the line after "index 123"). */
    p = strstr((char *)data, "\nindex 123\n") + 11;
    p[3] = p[3] == 'A' ? 'B' : 'A';
    spit(out_proof, data, len);
    free(data);
    rc = run(&out, "check-proof", out_proof, "--key", pub, NULL);
    CHECK(rc == 1 && strstr(out, "FAIL") != NULL, "bad proof refused: %s",
          out);
    free(out);
    rc = run(&out, "check-proof", out_proof, "--key", old, NULL);
    CHECK(rc == 2, "a non-key file is a usage error: %s", out);
    free(out);

    /* The citizen's report: exactly the leaves about subject 0. */
    snprintf(subject_arg, sizeof(subject_arg), "%s", g->subj[0].code);
    rc = run(&out, "subject", e1, "--audit-key", ak, "--type", LICENCE,
             "--subject", subject_arg, NULL);
    CHECK(rc == 0, "subject: %s", out);
    count = 0;
    for (p = out; (p = strchr(p, '\n')) != NULL;) {
        p++;
        if (*p >= '0' && *p <= '9') {
            uint64_t idx = strtoull(p, NULL, 10);

            CHECK(count < g->nexpect && g->expect[count] == idx,
                  "subject line %" PRIu64 " is leaf %" PRIu64, count, idx);
            count++;
        }
    }
    CHECK(count == g->nexpect && g->nexpect > 20,
          "subject found %" PRIu64 " of %zu leaves", count, g->nexpect);
    CHECK(strstr(out, g->subj[0].code) == NULL, "the report never prints "
          "the subject's ID");
    free(out);

    /* Consistency with the checkpoint kept at 300, and a forged one. */
    rc = run(&out, "consistency", old, e1, "--key", pub, NULL);
    CHECK(rc == 0 && strstr(out, "consistency: OK") != NULL,
          "consistency: %s", out);
    free(out);
    {
        char note[CHECKPOINT_MAX_NOTE];
        checkpoint cp;
        int nlen;

        memset(&cp, 0, sizeof(cp));
        strcpy(cp.origin, ORIGIN);
        cp.size = 300;
        memset(cp.root, 0x11, sizeof(cp.root));
        nlen = checkpoint_sign(&cp, ORIGIN, &g->broker, note, sizeof(note),
                               NULL);
        snprintf(path, sizeof(path), "%s/forged.checkpoint", tmp_root);
        spit(path, (uint8_t *)note, (size_t)nlen);
        rc = run(&out, "consistency", path, e1, "--key", pub, NULL);
        CHECK(rc == 1 && strstr(out, "rewritten") != NULL,
              "forged checkpoint refused: %s", out);
        free(out);
    }

    /* A range export: no entries before 512, tree still checked; but
     * only when the auditor says the range starts there. */
    export_to(g, e3, 600);
    rc = run(&out, "verify", e3, "--key", pub, "--from", "600", NULL);
    CHECK(rc == 0 && strstr(out, "leaves [0, 512) have no entry bundles"),
          "range export verifies: %s", out);
    free(out);
    rc = run(&out, "verify", e3, "--key", pub, NULL);
    CHECK(rc == 1 && fails_all_name(out, "missing: leaves ["),
          "missing entries are named without --from: %s", out);
    free(out);

    test_sealed_export(g, pub);

    /* Exporting into a directory holding another log's export. */
    snprintf(c, sizeof(c), "%s/copy-other", tmp_root);
    sh("cp -a '%s' '%s'", e1, c);
    snprintf(path, sizeof(path), "%s/checkpoint", c);
    {
        static const char other[] =
            "other.log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n";

        spit(path, (const uint8_t *)other, sizeof(other) - 1);
    }
    {
        once_error err;

        CHECK(export_with(g, c, 0, NULL, &err) == -ONCE_ERR_EXISTS,
              "mixing logs refused");
    }

    /* Usage. */
    rc = run(&out, "verify", "--help", NULL);
    CHECK(rc == 0 && strstr(out, "usage: once-audit verify") != NULL,
          "verify --help");
    free(out);
    rc = run(&out, "verify", e1, NULL);
    CHECK(rc == 2, "verify without --key is a usage error");
    free(out);
    for (i = 0; i < 4; i++) {
        static const char *const cmds[] = {"prove", "check-proof",
                                           "consistency", "subject"};

        rc = run(&out, cmds[i], "--help", NULL);
        CHECK(rc == 0 && strstr(out, "usage: once-audit") != NULL,
              "%s --help", cmds[i]);
        free(out);
    }
    store_close(&g->s);
    free(g->expect);
    free(g);
}

/* No byte of out is a control byte but newlines (and tabs, when they
 * separate columns), nor a raw Unicode bidirectional override. */
static int only_printable(const char *out, int tabs)
{
    const unsigned char *p;

    for (p = (const unsigned char *)out; *p != '\0'; p++)
        if ((*p < 0x20 && *p != '\n' && !(tabs && *p == '\t')) ||
            *p == 0x7f)
            return 0;
    return strstr(out, "\xe2\x80\xae") == NULL;
}

/* Text from the log with tabs, newlines, ESC and a bidi override in it:
 * once-audit prints it escaped, so it forges no row and no screen. */
static void test_hostile_text(void)
{
    static const char purpose[] = "\xe7\xa8\x8e\xe5\x8a\xa1 \xe2\x80\xae"
                                  "evil\x1b]0;title\x07";
    static const char case_id[] = "C-1\tGRANTED\n99\t2026-01-01T00:00:00Z"
                                  "\tpolice\trequest\t1\tx\ty\tGRANTED\\";
    static const char ghost[] = "ghost\x1b[31m\rGRANTED";
    char home[300], dir[300], pub[320], ak[320], proof[320];
    Once__LogLeaf leaf = ONCE__LOG_LEAF__INIT;
    Once__Request q = ONCE__REQUEST__INIT;
    uint8_t hash[32], *body, *ev;
    size_t body_len, ev_len;
    gen *g = calloc(1, sizeof(*g));
    const char *p;
    char *out;
    int rc, rows = 0;

    snprintf(home, sizeof(home), "%s/home-hostile", tmp_root);
    snprintf(dir, sizeof(dir), "%s/export-hostile", tmp_root);
    snprintf(pub, sizeof(pub), "%s/broker.pub", home);
    snprintf(ak, sizeof(ak), "%s/audit.key", home);
    open_log(g, home, 16u << 20);
    grow(g, NSUBJECTS);
    request(g, &g->depts[TAX], &g->subj[0], purpose, case_id,
            ONCE__ERROR_CODE__ERROR_NONE);
    /* A leaf naming a department that is not the envelope's sender. */
    q.type = LICENCE;
    q.subject = g->subj[0].code;
    q.purpose = "audit";
    q.case_id = "C-2";
    body_len = once__request__get_packed_size(&q);
    body = malloc(body_len);
    if (body == NULL)
        die("malloc", NULL);
    once__request__pack(&q, body);
    envelope(g, &g->depts[TAX], ONCE__KIND__KIND_REQUEST, body, body_len, 0,
             &ev, &ev_len);
    audit_subject_hash(g->audit_key, LICENCE, g->subj[0].code, hash);
    leaf.kind = ONCE__KIND__KIND_REQUEST;
    leaf.department = (char *)ghost;
    leaf.record_type = LICENCE;
    leaf.subject_hash.data = hash;
    leaf.subject_hash.len = sizeof(hash);
    leaf.purpose = "audit";
    leaf.case_id = "C-2";
    leaf.decision = ONCE__DECISION__DECISION_REFUSED;
    leaf.error = ONCE__ERROR_CODE__ERROR_NO_GRANT;
    append(g, &leaf, ev, ev_len, &g->subj[0]);
    free(body);
    free(ev);
    if (g->txn != NULL)
        commit(g);
    export_to(g, dir, 0);

    rc = run(&out, "subject", dir, "--audit-key", ak, "--type", LICENCE,
             "--subject", g->subj[0].code, NULL);
    CHECK(rc == 0 && only_printable(out, 1), "subject output holds raw "
          "control bytes: %s", out);
    for (p = out; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p), i;
        int tabs = 0;

        if (*p >= '0' && *p <= '9') {
            rows++;
            for (i = 0; i < n; i++)
                tabs += p[i] == '\t';
            CHECK(tabs == 7, "a row of 8 columns, not %d", tabs + 1);
        }
        p += n + (nl != NULL);
    }
    CHECK((size_t)rows == g->nexpect, "%d rows for %zu exchanges: %s", rows,
          g->nexpect, out);
    CHECK(strstr(out, "C-1\\x09GRANTED\\x0a99\\x09") != NULL &&
              strstr(out, "GRANTED\\\\\t") != NULL,
          "the case id is shown escaped: %s", out);
    CHECK(strstr(out, "\xe7\xa8\x8e\xe5\x8a\xa1 \\u{202e}evil\\x1b]0;"
                      "title\\x07") != NULL,
          "UTF-8 text passes, controls are escaped: %s", out);
    CHECK(strstr(out, "ghost\\x1b[31m\\x0dGRANTED") != NULL,
          "the department is shown escaped: %s", out);
    free(out);

    rc = run(&out, "verify", dir, "--key", pub, NULL);
    CHECK(rc == 1 && only_printable(out, 0) &&
              strstr(out, "FAIL leaf 9: department ghost\\x1b[31m\\x0dGRANTED "
                          "is not the envelope's sender") != NULL,
          "verify prints the department escaped: %s", out);
    free(out);

    snprintf(proof, sizeof(proof), "%s/hostile.tlog-proof", tmp_root);
    rc = run(&out, "prove", dir, "8", "-o", proof, NULL);
    CHECK(rc == 0, "prove: %s", out);
    free(out);
    rc = run(&out, "check-proof", proof, "--key", pub, NULL);
    CHECK(rc == 0 && only_printable(out, 0) &&
              strstr(out, "case \"C-1\\x09GRANTED") != NULL,
          "check-proof prints the leaf escaped: %s", out);
    free(out);
    store_close(&g->s);
    free(g->expect);
    free(g);
}

static int bench(uint64_t n, const char *dir)
{
    char home[600], exp[600];
    gen *g = calloc(1, sizeof(*g));
    double t0;
    struct timespec ts;

    if (g == NULL)
        return 1;
    snprintf(home, sizeof(home), "%s", dir);
    snprintf(exp, sizeof(exp), "%s/export", dir);
    open_log(g, home, (size_t)8 << 30);
    g->bench = 1;
    g->group = 256;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    grow(g, n);
    export_to(g, exp, 0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("built and exported %" PRIu64 " leaves in %.1f s\n"
           "once-audit verify %s --key %s/broker.pub --audit-key "
           "%s/audit.key\n",
           n, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0, exp, dir,
           dir);
    store_close(&g->s);
    free(g->expect);
    free(g);
    return 0;
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");

    if (once_init() < 0)
        return 1;
    if (argc == 4 && strcmp(argv[1], "--bench") == 0)
        return bench(strtoull(argv[2], NULL, 10), argv[3]);
    if (argc != 1) {
        fprintf(stderr, "usage: make_test_log [--bench N DIR]\n");
        return 2;
    }
    audit_path = getenv("ONCE_AUDIT");
    if (audit_path == NULL) {
        fprintf(stderr, "make_test_log: set ONCE_AUDIT to once-audit\n");
        return 1;
    }
    snprintf(tmp_root, sizeof(tmp_root), "%s/make_test_log.XXXXXX",
             tmp ? tmp : "/tmp");
    if (mkdtemp(tmp_root) == NULL)
        die("mkdtemp", NULL);
    test_export_and_audit();
    test_hostile_text();
    if (failures == 0)
        sh("rm -rf '%s'", tmp_root);
    else
        fprintf(stderr, "make_test_log: %d checks failed; files kept in %s\n",
                failures, tmp_root);
    return failures == 0 ? 0 : 1;
}
