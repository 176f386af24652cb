/*
 * test_log_gen.c - builds exchange logs with real signed envelopes, and
 * runs once-audit on their exports, for make_test_log.c.
 *
 * The log is built the way the broker's writer builds it: real department
 * keys, real signed envelopes of every kind, granted and refused, a
 * BAD_SIGNATURE refusal, group commits each followed by a signed
 * checkpoint. The group size varies like a broker's under changing load.
 */
#include "test_log_gen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "checkpoint.h"
#include "envelope.h"
#include "export.h"
#include "policy.h"
#include "tlog_tiles.h"

void die(const char *what, const once_error *err)
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
void commit(gen *g)
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

void envelope(gen *g, dept *d, Once__Kind kind, const uint8_t *body,
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
void append(gen *g, Once__LogLeaf *leaf, const uint8_t *evidence,
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

void request(gen *g, dept *d, subject_state *su, const char *purpose,
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

void open_log(gen *g, const char *dir, size_t map_size)
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

void grow(gen *g, uint64_t to)
{
    while (g->n < to)
        step(g);
    if (g->txn != NULL)
        commit(g);
}

int export_with(gen *g, const char *dir, uint64_t start,
                       const uint8_t *seal_to, once_error *err)
{
    export_options opt;

    memset(&opt, 0, sizeof(opt));
    opt.start = start;
    opt.seal_to = seal_to;
    return export_log(&g->s, &g->log, dir, &opt, err);
}

void export_to(gen *g, const char *dir, uint64_t start)
{
    once_error err;

    if (export_with(g, dir, start, NULL, &err) < 0)
        die("export_log", &err);
}

/* ---- running once-audit ---- */

char *audit_path;
char tmp_root[256];
int failures;

/* Runs once-audit with the NULL-terminated arguments; its stdout and
 * stderr land in *out (malloc'd). Returns the exit status. */
int run(char **out, ...)
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
int fails_all_name(const char *out, const char *token)
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

void sh(const char *fmt, ...)
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

int same_tree(const char *a, const char *b)
{
    char cmd[700];

    snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s'", a, b);
    return system(cmd) == 0;
}

uint8_t *slurp(const char *path, size_t *len)
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

void spit(const char *path, const uint8_t *data, size_t len)
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

void flip_in_bundle(const char *dir, const char *prefix, int len_bytes,
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
