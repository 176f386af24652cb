/*
 * preload.c - once-bench --preload N: the first N of the --records records
 * stored straight into the broker home's database, as the broker itself
 * stores a publish, before onced starts.
 *
 * Why: the scale of the registry (issue 12, docs/PERFORMANCE.md "Scale of
 * the registry") is measured against ten million records, and publishing
 * them through the wire costs what a publish costs: hours of group commits
 * on a small machine. Here the same bytes are written by the storage code
 * onced and oncectl share (registry.c, auditlog.c), in large write
 * transactions, so ten million records take minutes.
 *
 * What is stored is what a real publish leaves behind, byte for byte in
 * kind and size (handle_write.c and writer.c do it for onced):
 *
 *   records, latest   the StoredRecord (the issuer's signed header, its
 *                     Ed25519 signature, every disclosure with its salt,
 *                     stored_at) and the latest-version entry;
 *   log_leaves        the publish's LogLeaf: time, kind, the issuer, the
 *                     type, the keyed subject hash (the home's audit key),
 *                     version 1, the header's and the envelope's digests;
 *   log_evidence      the envelope, signed by the issuer's department key,
 *                     exactly as onced would have received it;
 *   log_nodes         the Merkle tree's hashes, by auditlog_append.
 *
 * Not stored: the publish's answer in `replies`, which the writer prunes
 * one skew window later, so it is no part of what a record costs in the
 * long run. onced signs the checkpoint of the preloaded tree when it
 * starts (onced.c), as after any restart.
 *
 * Every record is really signed: a requester (and the bench's sample
 * check) verifies the issuer's signature, and once-audit may verify the
 * evidence's envelope signatures. That is two Ed25519 signatures a record,
 * the dominant cost, so batches are built on --threads threads; the
 * main thread then stores each batch in one transaction.
 *
 * The subjects are make_subject(0..N-1), the numbering the request phase
 * draws from, but stored in a scrambled order (the k-th record stored is
 * subject k x 2654435761 mod N, a prime above any N, so every subject
 * once): records in key order would fill LMDB's pages far fuller than
 * publishes arriving in any order do, and understate the bytes a record
 * takes.
 */
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit_hash.h"
#include "auditlog.h"
#include "bench.h"
#include "digest.h"
#include "envelope.h"
#include "once.pb-c.h"
#include "phases.h"
#include "preload.h"
#include "registry.h"
#include "store.h"

/* Records built in parallel and then stored in one write transaction: big
 * enough that the fsync of each commit does not count, small enough for
 * LMDB's dirty page list (about 2 KB a record, 40 MB a batch). */
#define PRELOAD_BATCH 20000
/* The stride of the scrambled order: a prime above any --preload. */
#define PRELOAD_STRIDE 2654435761ull

/* One record, ready to store. */
typedef struct preload_item {
    uint8_t *stored;        /* the StoredRecord */
    size_t stored_len;
    uint8_t *envelope;      /* the evidence */
    size_t envelope_len;
    uint8_t *leaf;          /* the LogLeaf */
    size_t leaf_len;
    char subject[19];
} preload_item;

typedef struct preload_batch {
    const bench_home *h;
    const uint8_t *audit_key;
    uint64_t session;
    unsigned long n;        /* records in all */
    unsigned long first;    /* the place in the order of items[0] */
    preload_item *items;
    size_t from, to;        /* this thread's share of items */
    int rc;
} preload_batch;

static void item_clear(preload_item *it)
{
    free(it->stored);
    free(it->envelope);
    free(it->leaf);
    memset(it, 0, sizeof(*it));
}

/* Signs record `index` and its envelope, and encodes what a publish of it
 * stores. */
static int build_item(const preload_batch *b, unsigned long index,
                      preload_item *it)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    Once__StoredRecord stored = ONCE__STORED_RECORD__INIT;
    Once__LogLeaf leaf = ONCE__LOG_LEAF__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES], record_digest[32], envelope_digest[32];
    uint8_t subject_hash[AUDIT_SUBJECT_HASH_BYTES];
    Once__Publish *p = NULL;
    uint8_t *body = NULL;
    size_t body_len;
    int rc = -1;

    make_subject(index, it->subject);
    if (make_publish_body(&b->h->issuer, index, &body, &body_len) < 0)
        return -1;
    p = once__publish__unpack(NULL, body_len, body);
    if (p == NULL || p->record == NULL)
        goto out;

    e.version = ENVELOPE_VERSION;
    e.sender = (char *)BENCH_ISSUER;
    e.session = b->session;
    e.seq = index + 1;
    e.sent_at = once_now_ms();
    e.kind = ONCE__KIND__KIND_PUBLISH;
    e.body.data = body;
    e.body.len = body_len;
    if (envelope_sign(&e, &b->h->issuer, sig) < 0)
        goto out;
    it->envelope_len = once__envelope__get_packed_size(&e);
    if ((it->envelope = malloc(it->envelope_len)) == NULL)
        goto out;
    once__envelope__pack(&e, it->envelope);
    digest_sha256(envelope_digest, it->envelope, it->envelope_len);

    stored.record = p->record;
    stored.disclosures = p->disclosures;
    stored.n_disclosures = p->n_disclosures;
    stored.stored_at = once_now_ms();
    it->stored_len = once__stored_record__get_packed_size(&stored);
    if ((it->stored = malloc(it->stored_len)) == NULL)
        goto out;
    once__stored_record__pack(&stored, it->stored);

    digest_sha256(record_digest, p->record->header.data,
                  p->record->header.len);
    audit_subject_hash(b->audit_key, BENCH_TYPE, it->subject, subject_hash);
    leaf.time = once_now_ms();
    leaf.kind = ONCE__KIND__KIND_PUBLISH;
    leaf.department = (char *)BENCH_ISSUER;
    leaf.record_type = (char *)BENCH_TYPE;
    leaf.subject_hash.data = subject_hash;
    leaf.subject_hash.len = sizeof(subject_hash);
    leaf.purpose = (char *)"";
    leaf.case_id = (char *)"";
    leaf.user = (char *)"";
    leaf.decision = ONCE__DECISION__DECISION_GRANTED;
    leaf.error = ONCE__ERROR_CODE__ERROR_NONE;
    leaf.record_version = 1;
    leaf.record_digest.data = record_digest;
    leaf.record_digest.len = sizeof(record_digest);
    leaf.envelope_digest.data = envelope_digest;
    leaf.envelope_digest.len = sizeof(envelope_digest);
    it->leaf_len = once__log_leaf__get_packed_size(&leaf);
    if ((it->leaf = malloc(it->leaf_len)) == NULL)
        goto out;
    once__log_leaf__pack(&leaf, it->leaf);
    rc = 0;
out:
    if (p != NULL)
        once__publish__free_unpacked(p, NULL);
    free(body);
    return rc;
}

static void *build_share(void *arg)
{
    preload_batch *b = arg;

    for (size_t i = b->from; i < b->to && b->rc == 0; i++)
        b->rc = build_item(b, (unsigned long)((b->first + i) *
                                              PRELOAD_STRIDE % b->n),
                           &b->items[i]);
    return NULL;
}

/* The threads building one batch. */
typedef struct builders {
    preload_batch b[64];
    pthread_t tid[64];
    size_t started, per, n;
} builders;

/* Starts building items[0..n), places first.. of the order, on up to
 * --threads threads. */
static void builders_start(builders *bl, const preload_batch *proto,
                           preload_item *items, unsigned long first, size_t n)
{
    size_t threads = opt.threads > 64 ? 64 : opt.threads, t;

    bl->started = 0;
    bl->n = n;
    bl->per = (n + threads - 1) / threads;
    for (t = 0; t < threads && t * bl->per < n; t++) {
        preload_batch *b = &bl->b[t];

        *b = *proto;
        b->first = first;
        b->items = items;
        b->from = t * bl->per;
        b->to = n - t * bl->per < bl->per ? n : (t + 1) * bl->per;
        b->rc = 0;
        if (pthread_create(&bl->tid[t], NULL, build_share, b) != 0)
            break;
        bl->started++;
    }
}

/* Waits for the batch: 0 when every item was built. */
static int builders_join(builders *bl)
{
    int rc = 0;

    for (size_t t = 0; t < bl->started; t++) {
        pthread_join(bl->tid[t], NULL);
        if (bl->b[t].rc < 0)
            rc = -1;
    }
    if (bl->started == 0 || bl->started * bl->per < bl->n)
        rc = -1;
    return rc;
}

/* Stores items[0..n) in one transaction, as the writer stores a group of
 * publishes: each record, then its leaf with its evidence. */
static int store_batch(store *s, const auditlog *log, preload_item *items,
                       size_t n, once_error *err)
{
    MDB_txn *txn;
    uint64_t index;
    size_t i;
    int rc;

    if ((rc = store_begin(s, 0, &txn, err)) < 0)
        return rc;
    for (i = 0; i < n && rc == 0; i++) {
        rc = registry_put_record(txn, s, BENCH_TYPE, items[i].subject, 1,
                                 items[i].stored, items[i].stored_len, NULL,
                                 err);
        if (rc == 0)
            rc = auditlog_append(txn, log, items[i].leaf, items[i].leaf_len,
                                 items[i].envelope, items[i].envelope_len,
                                 &index, err);
    }
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_commit(txn, err);
}

size_t preload_map_size_mb(unsigned long records)
{
    /* About 2.2 KB a record (docs/PERFORMANCE.md measures it), twice that
     * for room, and the 4 GiB every bench home has for its requests. */
    return 4096 + (size_t)(records / 1024 * 5);
}

int preload_records(const bench_home *h, unsigned long n)
{
    char db[PATH_MAX + 16], key_path[PATH_MAX + 16];
    uint8_t audit_key[AUDIT_KEY_BYTES];
    preload_batch proto = {0};
    builders bl;
    preload_item *items;
    uint64_t start = monotonic_ns(), built_ns = 0, stored_ns = 0, t0;
    uint64_t stored_bytes = 0, envelope_bytes = 0, leaf_bytes = 0;
    once_error err = {0};
    auditlog log;
    store s;
    int rc = -1;

    if (path_join(db, sizeof(db), h->home, "db") < 0 ||
        path_join(key_path, sizeof(key_path), h->home, "audit.key") < 0)
        return -1;
    if (audit_key_load(audit_key, key_path, &err) < 0) {
        note("cannot read the audit key: %s", err.message);
        return -1;
    }
    items = calloc(2 * PRELOAD_BATCH, sizeof(*items));
    if (items == NULL)
        goto wipe;
    if (store_open(&s, db, preload_map_size_mb(n) << 20, &err) < 0) {
        note("cannot open the database: %s", err.message);
        goto free_items;
    }
    if (auditlog_open(&log, &s, &err) < 0) {
        note("cannot open the exchange log: %s", err.message);
        goto close;
    }
    proto.h = h;
    proto.n = n;
    proto.audit_key = audit_key;
    do
        randombytes_buf(&proto.session, sizeof(proto.session));
    while (proto.session == 0);
    note("preloading %lu records on %lu threads", n, opt.threads);
    /* Batch k + 1 is signed while batch k is stored: storing mostly waits
     * for the disk. */
    builders_start(&bl, &proto, items, 0,
                   n < PRELOAD_BATCH ? n : PRELOAD_BATCH);
    for (unsigned long first = 0; first < n; first += PRELOAD_BATCH) {
        size_t count = n - first < PRELOAD_BATCH ? n - first : PRELOAD_BATCH;
        preload_item *cur = items + (first / PRELOAD_BATCH % 2) * PRELOAD_BATCH;
        preload_item *next = items + PRELOAD_BATCH - (cur - items);
        unsigned long after = first + count;
        bool pending = false;
        int ok;

        t0 = monotonic_ns();
        ok = builders_join(&bl);
        built_ns += monotonic_ns() - t0;
        if (ok == 0 && after < n) {
            builders_start(&bl, &proto, next, after,
                           n - after < PRELOAD_BATCH ? n - after
                                                     : PRELOAD_BATCH);
            pending = true;
        }
        t0 = monotonic_ns();
        if (ok == 0 && store_batch(&s, &log, cur, count, &err) < 0) {
            note("cannot store the preloaded records: %s", err.message);
            ok = -1;
        }
        stored_ns += monotonic_ns() - t0;
        for (size_t i = 0; i < count; i++) {
            stored_bytes += cur[i].stored_len;
            envelope_bytes += cur[i].envelope_len;
            leaf_bytes += cur[i].leaf_len;
            item_clear(&cur[i]);
        }
        if (ok < 0) {
            if (pending)
                builders_join(&bl);
            for (size_t i = 0; i < PRELOAD_BATCH; i++)
                item_clear(&next[i]);
            if (err.message[0] == '\0')
                note("cannot build the preloaded records (out of memory?)");
            goto close;
        }
        if ((first / PRELOAD_BATCH) % 50 == 49)
            note("preloaded %lu of %lu records", after, n);
    }
    note("preloaded %lu records in %.1f s: %.1f s waiting for the signing "
         "threads, %.1f s storing (%.0f records/s)", n,
         (double)(monotonic_ns() - start) / 1e9, (double)built_ns / 1e9,
         (double)stored_ns / 1e9,
         (double)n / ((double)(monotonic_ns() - start) / 1e9));
    note("a record averages %.0f bytes stored, %.0f of envelope (the "
         "evidence), %.0f of leaf", (double)stored_bytes / (double)n,
         (double)envelope_bytes / (double)n, (double)leaf_bytes / (double)n);
    rc = 0;
close:
    store_close(&s);
free_items:
    free(items);
wipe:
    sodium_memzero(audit_key, sizeof(audit_key));
    return rc;
}
