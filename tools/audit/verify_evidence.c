/*
 * verify_evidence.c - the evidence pass of `once-audit verify`: every leaf
 * against the envelope its department signed.
 *
 * A leaf records who did what (department, kind, record type, purpose,
 * case id, a keyed hash of the subject, the decision) and the SHA-256 of
 * the envelope the department sent, which the export keeps as evidence.
 * This pass checks, for every leaf, that the evidence is that envelope,
 * that the department's key valid at the leaf's time signed it, and that
 * the envelope says what the leaf records. So a broker (or anyone who
 * handled the export) cannot log an exchange nobody asked for, or change
 * what was asked, without a FAIL line here.
 *
 * Refusals are special where the broker may not have got that far: a
 * refusal may leave a field empty the broker did not decode, an envelope
 * from an unknown sender has no key to check, one refused as BAD_SIGNATURE
 * must indeed fail to verify, and only the refusal of a large envelope may
 * omit it (docs/AUDIT.md).
 *
 * One Ed25519 verification per leaf (~50 us) makes this pass far slower
 * than the tree, so it runs on the thread pool by evidence bundle, only
 * over the bundles the tree pass hashed, and re-reads each entry bundle
 * only if its digest is still the one the tree pass hashed. With --since,
 * the envelopes below the kept checkpoint whose department key is
 * unchanged are not verified again: the leaf's envelope digest, under a
 * root the tree pass confirmed, pins the same bytes an earlier run
 * checked.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "evidence.h"
#include "tlog_tiles.h"
#include "util.h"
#include "verifier.h"

#define EVIDENCE_BATCH 32  /* bundles per thread-pool round */

typedef struct evidence_bundle {
    report problems;
    uint64_t checked, unauthenticated;
    uint64_t pinned; /* signatures an earlier run checked (--since) */
} evidence_bundle;

typedef struct evidence_job {
    verifier *v;
    uint64_t *bundles;      /* bundle numbers of this round */
    evidence_bundle *results;
} evidence_job;

/* A leaf field matches the envelope's, or is empty on a refusal (the
 * broker may refuse before it decodes the body). */
static int field_ok(const char *leaf, const char *body, int refused)
{
    return strcmp(leaf, body) == 0 || (refused && leaf[0] == '\0');
}

static void check_subject(verifier *v, report *p, uint64_t index,
                          const Once__LogLeaf *leaf, const char *type,
                          const char *subject, int refused)
{
    uint8_t h[AUDIT_SUBJECT_HASH_BYTES];

    if (!v->have_audit_key)
        return;
    if (refused && leaf->subject_hash.len == 0)
        return;
    audit_subject_hash(v->audit_key, type, subject, h);
    if (leaf->subject_hash.len != sizeof(h) ||
        memcmp(leaf->subject_hash.data, h, sizeof(h)) != 0)
        report_add(p, "leaf %" PRIu64 ": subject hash does not match the "
                   "subject in the evidence", index);
}

/* Checks a signed record (publish or revoke) against the leaf. */
static void check_record(verifier *v, report *p, uint64_t index,
                         const Once__LogLeaf *leaf,
                         const Once__SignedRecord *rec, int refused)
{
    uint8_t digest[32];
    Once__RecordHeader *h;

    if (rec == NULL) {
        if (!refused)
            report_add(p, "leaf %" PRIu64 ": evidence holds no record",
                       index);
        return;
    }
    digest_sha256(digest, rec->header.data, rec->header.len);
    if (!(refused && leaf->record_digest.len == 0) &&
        (leaf->record_digest.len != 32 ||
         memcmp(leaf->record_digest.data, digest, 32) != 0))
        report_add(p, "leaf %" PRIu64 ": record digest does not match the "
                   "record header in the evidence", index);
    h = once__record_header__unpack(NULL, rec->header.len, rec->header.data);
    if (h == NULL) {
        if (!refused)
            report_add(p, "leaf %" PRIu64 ": the evidence's record header "
                       "does not decode", index);
        return;
    }
    if (!field_ok(leaf->record_type, h->type, refused))
        report_add(p, "leaf %" PRIu64 ": record type %s is not the "
                   "evidence's %s", index, leaf->record_type, h->type);
    if (leaf->record_version != h->version &&
        !(refused && leaf->record_version == 0))
        report_add(p, "leaf %" PRIu64 ": record version %" PRIu64 " is not "
                   "the evidence's %" PRIu64, index, leaf->record_version,
                   h->version);
    check_subject(v, p, index, leaf, h->type, h->subject, refused);
    once__record_header__free_unpacked(h, NULL);
}

/* A publish or revoke body, decoded: both carry one signed record. */
typedef struct record_body {
    Once__Publish *publish;
    Once__Revoke *revoke;
    const Once__SignedRecord *record; /* NULL when the body has none */
} record_body;

/* Decodes the body of a publish or a revoke (kind). 0, or -1 when it does
 * not decode. */
static int record_body_unpack(record_body *m, int kind,
                              const ProtobufCBinaryData *body)
{
    memset(m, 0, sizeof(*m));
    if (kind == ONCE__KIND__KIND_PUBLISH) {
        m->publish = once__publish__unpack(NULL, body->len, body->data);
        if (m->publish == NULL)
            return -1;
        m->record = m->publish->record;
    } else {
        m->revoke = once__revoke__unpack(NULL, body->len, body->data);
        if (m->revoke == NULL)
            return -1;
        m->record = m->revoke->record;
    }
    return 0;
}

static void record_body_free(record_body *m)
{
    if (m->publish != NULL)
        once__publish__free_unpacked(m->publish, NULL);
    if (m->revoke != NULL)
        once__revoke__free_unpacked(m->revoke, NULL);
}

/* A subscribe or unsubscribe leaf names the body's type, and the keyed
 * hash of its subject when it has one (AUDIT.md 1). */
static void check_subscription(verifier *v, report *p, uint64_t index,
                               const Once__LogLeaf *leaf,
                               const ProtobufCBinaryData *body, int refused)
{
    Once__Subscribe *s = once__subscribe__unpack(NULL, body->len, body->data);

    if (s == NULL) {
        if (!refused)
            report_add(p, "leaf %" PRIu64 ": the evidence's subscription "
                       "does not decode", index);
        return;
    }
    if (!field_ok(leaf->record_type, s->type, refused))
        report_add(p, "leaf %" PRIu64 ": record type %s is not the "
                   "subscription's %s", index, leaf->record_type, s->type);
    if (s->subject[0] != '\0')
        check_subject(v, p, index, leaf, s->type, s->subject, refused);
    once__subscribe__free_unpacked(s, NULL);
}

static void check_body(verifier *v, report *p, uint64_t index,
                       const Once__LogLeaf *leaf, const Once__Envelope *env,
                       int refused)
{
    const ProtobufCBinaryData *body = &env->body;

    if (leaf->kind == ONCE__KIND__KIND_SUBSCRIBE ||
        leaf->kind == ONCE__KIND__KIND_UNSUBSCRIBE) {
        check_subscription(v, p, index, leaf, body, refused);
    } else if (leaf->kind == ONCE__KIND__KIND_REQUEST) {
        Once__Request *q = once__request__unpack(NULL, body->len, body->data);

        if (q == NULL) {
            if (!refused)
                report_add(p, "leaf %" PRIu64 ": the evidence's request "
                           "does not decode", index);
            return;
        }
        if (!field_ok(leaf->record_type, q->type, refused))
            report_add(p, "leaf %" PRIu64 ": record type %s is not the "
                       "requested %s", index, leaf->record_type, q->type);
        if (!field_ok(leaf->purpose, q->purpose, refused))
            report_add(p, "leaf %" PRIu64 ": purpose differs from the "
                       "request's", index);
        if (!field_ok(leaf->case_id, q->case_id, refused))
            report_add(p, "leaf %" PRIu64 ": case id differs from the "
                       "request's", index);
        if (!field_ok(leaf->user, q->user, refused))
            report_add(p, "leaf %" PRIu64 ": acting user differs from the "
                       "request's", index);
        check_subject(v, p, index, leaf, q->type, q->subject, refused);
        once__request__free_unpacked(q, NULL);
    } else {
        record_body m;

        if (record_body_unpack(&m, (int)leaf->kind, body) < 0) {
            if (!refused)
                report_add(p, "leaf %" PRIu64 ": the evidence's %s does not "
                           "decode", index, kind_name((int)leaf->kind));
            return;
        }
        check_record(v, p, index, leaf, m.record, refused);
        record_body_free(&m);
    }
}

/* True when the envelope is a publish or revoke whose signed record does
 * not verify with pk: the broker refuses that as BAD_SIGNATURE too, with a
 * correctly signed envelope (PROTOCOL.md). */
static int record_signature_fails(const Once__Envelope *env, int kind,
                                  const uint8_t pk[32])
{
    const Once__SignedRecord *rec;
    record_body m;
    uint8_t *input;
    int fails = 1;

    if (kind != ONCE__KIND__KIND_PUBLISH && kind != ONCE__KIND__KIND_REVOKE)
        return 0;
    if (record_body_unpack(&m, kind, &env->body) < 0)
        return 1;
    rec = m.record;
    if (rec != NULL && rec->signature.len == crypto_sign_BYTES &&
        (input = malloc(RECORD_DOMAIN_BYTES + rec->header.len + 1)) != NULL) {
        memcpy(input, RECORD_DOMAIN, RECORD_DOMAIN_BYTES);
        memcpy(input + RECORD_DOMAIN_BYTES, rec->header.data,
               rec->header.len);
        fails = crypto_sign_verify_detached(
                    rec->signature.data, input,
                    RECORD_DOMAIN_BYTES + rec->header.len, pk) != 0;
        free(input);
    }
    record_body_free(&m);
    return fails;
}

/* The signature on the envelope against the department's key(s). */
static void check_signature(verifier *v, evidence_bundle *r, uint64_t index,
                            const Once__LogLeaf *leaf,
                            const Once__Envelope *env)
{
    int refused = leaf->decision == ONCE__DECISION__DECISION_REFUSED;
    int bad_sig_refusal =
        refused && leaf->error == ONCE__ERROR_CODE__ERROR_BAD_SIGNATURE;
    const dept_key *k = NULL;
    size_t first, count, i;
    char t[32], w[32];

    keys_of(&v->keys, leaf->department, &first, &count);
    if (count == 0) {
        if (refused && leaf->error == ONCE__ERROR_CODE__ERROR_UNKNOWN_SENDER) {
            r->unauthenticated++;
            return;
        }
        report_add(&r->problems, "leaf %" PRIu64 ": department %s has no key "
                   "in keys.txt", index, leaf->department);
        return;
    }
    /* The key valid at the leaf's time; else the latest one. */
    for (i = first; i < first + count; i++) {
        k = &v->keys.keys[i];
        if (leaf->time >= k->from && (k->until == 0 || leaf->time < k->until))
            break;
    }
    if (index < v->evidence_from && keys_hold(&v->kept_keys, k->id, k->pk)) {
        /* Same envelope bytes (the leaf's digest pins them), same key: the
         * earlier run's verdict stands. */
        r->pinned++;
    } else if (envelope_verify(env, k->pk) == 0) {
        if (bad_sig_refusal &&
            !record_signature_fails(env, (int)leaf->kind, k->pk))
            report_add(&r->problems, "leaf %" PRIu64 ": refused as "
                       "BAD_SIGNATURE, yet the envelope's signature by %s "
                       "verifies (and its record's)", index, leaf->department);
    } else if (!bad_sig_refusal) {
        report_add(&r->problems, "leaf %" PRIu64 ": the envelope's signature "
                   "by %s does not verify", index, leaf->department);
    }
    if (!refused && leaf->time < k->from) {
        format_time(leaf->time, t);
        format_time(k->from, w);
        report_add(&r->problems, "leaf %" PRIu64 ": granted at %s, before "
                   "%s's key was valid (from %s)", index, t, leaf->department,
                   w);
    } else if (!refused && k->until != 0 && leaf->time >= k->until) {
        format_time(leaf->time, t);
        format_time(k->until, w);
        report_add(&r->problems, "leaf %" PRIu64 ": granted at %s, after "
                   "%s's key stopped being valid (%s)", index, t,
                   leaf->department, w);
    }
}

static void check_leaf(verifier *v, evidence_bundle *r, uint64_t index,
                       const uint8_t *data, size_t len,
                       const uint8_t *evidence, size_t evidence_len)
{
    Once__LogLeaf *leaf = once__log_leaf__unpack(NULL, len, data);
    Once__Envelope *env;
    report *p = &r->problems;
    uint8_t digest[32];
    uint64_t omitted_size;
    int refused;

    if (leaf == NULL) {
        report_add(p, "leaf %" PRIu64 ": entry is not a LogLeaf", index);
        return;
    }
    refused = leaf->decision == ONCE__DECISION__DECISION_REFUSED;
    if (leaf->kind != ONCE__KIND__KIND_PUBLISH &&
        leaf->kind != ONCE__KIND__KIND_REVOKE &&
        leaf->kind != ONCE__KIND__KIND_REQUEST &&
        leaf->kind != ONCE__KIND__KIND_SUBSCRIBE &&
        leaf->kind != ONCE__KIND__KIND_UNSUBSCRIBE)
        report_add(p, "leaf %" PRIu64 ": kind %d is not publish, revoke, "
                   "request, subscribe or unsubscribe", index,
                   (int)leaf->kind);
    if (!(leaf->decision == ONCE__DECISION__DECISION_GRANTED &&
          leaf->error == ONCE__ERROR_CODE__ERROR_NONE) &&
        !(refused && leaf->error != ONCE__ERROR_CODE__ERROR_NONE))
        report_add(p, "leaf %" PRIu64 ": decision %d with error %s is "
                   "inconsistent", index, (int)leaf->decision,
                   once_error_name((int)leaf->error));
    if (evidence_omitted_parse(evidence, evidence_len, &omitted_size,
                               digest)) {
        /* AUDIT.md: only a refusal of a large envelope may omit it. */
        if (!refused || omitted_size <= EVIDENCE_REFUSAL_MAX ||
            leaf->envelope_digest.len != 32 ||
            memcmp(leaf->envelope_digest.data, digest, 32) != 0)
            report_add(p, "leaf %" PRIu64 ": evidence omitted, which only "
                       "a refusal of an envelope over %d bytes may be, with "
                       "the leaf's envelope digest", index,
                       EVIDENCE_REFUSAL_MAX);
        r->checked++;
        r->unauthenticated++;
        once__log_leaf__free_unpacked(leaf, NULL);
        return;
    }
    digest_sha256(digest, evidence, evidence_len);
    if (leaf->envelope_digest.len != 32 ||
        memcmp(leaf->envelope_digest.data, digest, 32) != 0)
        report_add(p, "leaf %" PRIu64 ": the evidence does not match the "
                   "leaf's envelope digest", index);
    r->checked++;
    env = envelope_unpack(evidence, evidence_len);
    if (env == NULL) {
        report_add(p, "leaf %" PRIu64 ": the evidence is not an envelope",
                   index);
        once__log_leaf__free_unpacked(leaf, NULL);
        return;
    }
    if (strcmp(env->sender, leaf->department) != 0)
        report_add(p, "leaf %" PRIu64 ": department %s is not the envelope's "
                   "sender %s", index, leaf->department, env->sender);
    if ((int)env->kind != (int)leaf->kind)
        report_add(p, "leaf %" PRIu64 ": kind %s is not the envelope's %s",
                   index, kind_name((int)leaf->kind),
                   kind_name((int)env->kind));
    check_signature(v, r, index, leaf, env);
    if (leaf->kind == ONCE__KIND__KIND_PUBLISH ||
        leaf->kind == ONCE__KIND__KIND_REVOKE ||
        leaf->kind == ONCE__KIND__KIND_REQUEST ||
        leaf->kind == ONCE__KIND__KIND_SUBSCRIBE ||
        leaf->kind == ONCE__KIND__KIND_UNSUBSCRIBE)
        check_body(v, p, index, leaf, env, refused);
    once__envelope__free_unpacked(env, NULL);
    once__log_leaf__free_unpacked(leaf, NULL);
}

static void evidence_bundle_task(void *arg, size_t i)
{
    evidence_job *job = arg;
    verifier *v = job->v;
    evidence_bundle *r = &job->results[i];
    uint64_t b = job->bundles[i], base = b * TLOG_TILE_WIDTH;
    unsigned width = tlog_tile_width(v->size, 0, b), j;
    size_t eoffs[TLOG_TILE_WIDTH], elens[TLOG_TILE_WIDTH];
    size_t voffs[TLOG_TILE_WIDTH], vlens[TLOG_TILE_WIDTH], elen, vlen;
    char path[TLOG_PATH_MAX], why[96];
    uint8_t *entries = NULL, *evidence = NULL;
    uint8_t digest[DIGEST_SHA256_BYTES];
    int rc;

    tile_path(path, "tile/entries", b, width);
    if (read_at(v->x.fd, path, &entries, &elen) < 0) {
        report_add(&r->problems, "%s: cannot be read again: leaves [%" PRIu64
                   ", %" PRIu64 ") cannot be checked", path, base,
                   base + width);
        goto out;
    }
    digest_sha256(digest, entries, elen);
    if (memcmp(digest, v->entries_digest[b], sizeof(digest)) != 0 ||
        split_bundle(entries, elen, width, TLOG_ENTRY_LENGTH_BYTES, eoffs,
                     elens, why, sizeof(why)) < 0) {
        report_add(&r->problems, "%s: changed while it was being verified: "
                   "leaves [%" PRIu64 ", %" PRIu64 ") cannot be checked",
                   path, base, base + width);
        goto out;
    }
    tile_path(path, audit_evidence_dir(&v->evidence), b, width);
    rc = read_at(v->x.fd, path, &evidence, &vlen);
    if (rc == 0 &&
        audit_evidence_unwrap(&v->evidence, &evidence, &vlen, why,
                              sizeof(why)) < 0) {
        report_add(&r->problems, "%s: %s: leaves [%" PRIu64 ", %" PRIu64
                   ") cannot be checked", path, why, base, base + width);
        goto out;
    }
    if (rc < 0) {
        report_add(&r->problems, "%s: %s: leaves [%" PRIu64 ", %" PRIu64
                   ") have no evidence", path,
                   rc == -ENOENT ? "missing" : strerror(-rc), base,
                   base + width);
        goto out;
    }
    if (split_bundle(evidence, vlen, width, TLOG_EVIDENCE_LENGTH_BYTES, voffs,
                     vlens, why, sizeof(why)) < 0) {
        report_add(&r->problems, "%s: malformed (%s): leaves [%" PRIu64
                   ", %" PRIu64 ") cannot be checked", path, why, base,
                   base + width);
        goto out;
    }
    for (j = 0; j < width; j++)
        check_leaf(v, r, base + j, entries + eoffs[j], elens[j],
                   evidence + voffs[j], vlens[j]);
out:
    free(entries);
    free(evidence);
}

void run_evidence_pass(verifier *v, uint64_t *checked,
                       uint64_t *unauthenticated, uint64_t *pinned)
{
    uint64_t count = tlog_tile_count(v->size, 0), b = 0, done = 0, total = 0;
    uint64_t bundles[EVIDENCE_BATCH];
    evidence_bundle results[EVIDENCE_BATCH];
    evidence_job job = {v, bundles, results};
    double last = now_seconds();
    size_t n, i;

    for (b = 0; b < count; b++)
        if (v->entries_ok[b])
            total += tlog_tile_width(v->size, 0, b);
    b = 0;
    while (b < count) {
        for (n = 0; n < EVIDENCE_BATCH && b < count; b++)
            if (v->entries_ok[b])
                bundles[n++] = b;
        memset(results, 0, sizeof(results));
        pool_run(&v->pool, evidence_bundle_task, &job, n);
        for (i = 0; i < n; i++) {
            v->problems += report_flush(&results[i].problems);
            report_free(&results[i].problems);
            *checked += results[i].checked;
            *unauthenticated += results[i].unauthenticated;
            *pinned += results[i].pinned;
            done += tlog_tile_width(v->size, 0, bundles[i]);
        }
        progress("evidence", done, total, &last);
    }
}

/* Whether the evidence can be read: in plain, or sealed to the auditor
 * whose key was given (sealed_evidence.c). */
int evidence_readable(verifier *v, char *why, size_t why_cap)
{
    uint8_t *recipient = NULL;
    size_t len = 0;
    int sealed, rc;

    sealed = read_at(v->x.fd, AUDIT_SEALED_KEY_FILE, &recipient, &len) == 0;
    rc = audit_evidence_prepare(&v->evidence, sealed ? recipient : NULL, len,
                                why, why_cap);
    free(recipient);
    return rc;
}
