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
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "checkpoint.h"
#include "export.h"
#include "test_log_gen.h"
#include "tlog_tiles.h"

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

    /* --save and prove -o write nothing through a planted link, nor into
     * a directory others may write. */
    snprintf(c, sizeof(c), "%s/state-open", tmp_root);
    sh("mkdir -m 777 '%s'", c);
    rc = run(&out, "verify", e1, "--key", pub, "--save", c, NULL);
    CHECK(rc == 1 && strstr(out, "group or others may write") != NULL,
          "--save into a world-writable directory: %s", out);
    free(out);
    snprintf(c, sizeof(c), "%s/state-link", tmp_root);
    sh("mkdir -m 755 '%s' && echo precious >'%s/victim' && "
       "ln -s '%s/victim' '%s/checkpoint.tmp'", c, tmp_root, tmp_root, c);
    rc = run(&out, "verify", e1, "--key", pub, "--save", c, NULL);
    CHECK(rc == 1 && strstr(out, "checkpoint.tmp is a symbolic link") != NULL,
          "--save through a planted link: %s", out);
    free(out);
    snprintf(path, sizeof(path), "%s/proof-link", tmp_root);
    sh("ln -s '%s/victim' '%s'", tmp_root, path);
    rc = run(&out, "prove", e1, "1", "-o", path, NULL);
    CHECK(rc == 1, "prove -o through a planted link: %s", out);
    free(out);
    snprintf(path, sizeof(path), "%s/victim", tmp_root);
    data = slurp(path, &len);
    CHECK(strcmp((char *)data, "precious\n") == 0, "the victim is intact");
    free(data);

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
            CHECK(tabs == 8, "a row of 9 columns, not %d", tabs + 1);
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
