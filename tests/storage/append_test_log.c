/*
 * append_test_log.c - grows the exchange log of a broker home the way the
 * broker's writer does, for test_oncectl.sh.
 *
 *     append_test_log HOME ORIGIN COUNT GROUP
 *
 * Appends COUNT leaves to the log in HOME/db, GROUP per write transaction,
 * and signs a checkpoint with HOME/broker.key under ORIGIN at the end of
 * each transaction, as onced commits a group. COUNT 0 only signs the
 * checkpoint of the current size (the empty tree on a new home).
 *
 * Why a helper and not the broker: oncectl's log commands read what the
 * broker writes, and these tests are about oncectl (sizes, ranges,
 * extension, messages), not about the broker's traffic. The leaves are
 * placeholder bytes, not LogLeaf messages, so an export of this log passes
 * `once-audit consistency` (tiles and checkpoints) but not `verify`
 * (which decodes every leaf); tests/log covers that with real envelopes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "checkpoint.h"
#include "store.h"

static int fail(const char *what, const once_error *err)
{
    fprintf(stderr, "append_test_log: %s: %s\n", what, err->message);
    return 1;
}

/* Appends n leaves in one transaction and signs the checkpoint after. */
static int append_group(const store *s, const auditlog *log,
                        const char *origin, const once_keypair *kp,
                        uint64_t n, once_error *err)
{
    char leaf[64], evidence[64], note[CHECKPOINT_MAX_NOTE];
    uint64_t size, i, index;
    MDB_txn *txn;
    int rc;

    rc = store_begin(s, 0, &txn, err);
    if (rc < 0)
        return rc;
    rc = auditlog_size(txn, log, &size, err);
    for (i = 0; rc == 0 && i < n; i++) {
        int leaf_len = snprintf(leaf, sizeof(leaf), "test leaf %" PRIu64,
                                size + i);
        int evidence_len = snprintf(evidence, sizeof(evidence),
                                    "test evidence %" PRIu64, size + i);

        rc = auditlog_append(txn, log, (const uint8_t *)leaf,
                             (size_t)leaf_len, (const uint8_t *)evidence,
                             (size_t)evidence_len, &index, err);
    }
    if (rc == 0) {
        rc = auditlog_sign_checkpoint(txn, log, origin, kp, note,
                                      sizeof(note), err);
        rc = rc < 0 ? rc : 0;
    }
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_commit(txn, err);
}

int main(int argc, char **argv)
{
    char db[4096], key[4096];
    uint64_t count, group, n;
    once_keypair kp;
    once_error err;
    auditlog log;
    store s;
    int rc;

    if (argc != 5) {
        fprintf(stderr, "usage: append_test_log HOME ORIGIN COUNT GROUP\n");
        return 2;
    }
    count = strtoull(argv[3], NULL, 10);
    group = strtoull(argv[4], NULL, 10);
    if (group == 0) {
        fprintf(stderr, "append_test_log: GROUP must be at least 1\n");
        return 2;
    }
    snprintf(db, sizeof(db), "%s/db", argv[1]);
    snprintf(key, sizeof(key), "%s/broker.key", argv[1]);
    if (once_init() < 0) {
        fprintf(stderr, "append_test_log: cannot initialise libsodium\n");
        return 1;
    }
    if (once_keypair_load(&kp, key, &err) < 0)
        return fail("broker key", &err);
    if (store_open(&s, db, 0, &err) < 0) {
        once_keypair_wipe(&kp);
        return fail("database", &err);
    }
    rc = auditlog_open(&log, &s, &err);
    do {
        n = count < group ? count : group;
        if (rc == 0)
            rc = append_group(&s, &log, argv[2], &kp, n, &err);
        count -= n;
    } while (rc == 0 && count > 0);
    store_close(&s);
    once_keypair_wipe(&kp);
    return rc < 0 ? fail("log", &err) : 0;
}
