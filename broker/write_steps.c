/*
 * write_steps.c - what one job puts into its group's transaction: its
 * record, its log leaf with the envelope as evidence, and its answer with
 * the receipt, kept for a retry.
 *
 * The writer (writer.c) decides what a group is, when it commits, signs
 * the checkpoints and sends the answers; these are the steps it takes for
 * each job inside the one transaction, in this order: every record and
 * leaf first, then (once the tree's size and the checkpoint are known)
 * every answer, whose receipt names its leaf and, when a proof was asked
 * for, carries the checkpoint and the inclusion proof. Each step returns
 * 0 while the transaction is still usable, including when the job itself
 * was refused (a stale version): only a failure of the database, which
 * the writer answers by aborting the whole group, returns a negative code.
 * They take what they use as arguments, not the writer, so each says
 * which tables it touches.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "registry.h"
#include "write_steps.h"

/* Puts one job's record. Returns 0 when the transaction is still usable
 * (the record stored, or refused for its own reason, which turns the job's
 * answer into that refusal), or a negative code when the database failed
 * and the transaction must be aborted (err says why). */
int write_step_record(MDB_txn *txn, store *db, byte_buffer *scratch,
                      write_job *job, once_error *err)
{
    once_error refusal;
    int rc;

    if (job->stored_len == 0 || job->answer_kind != ONCE__KIND__KIND_RESPONSE)
        return 0;
    rc = registry_put_record(txn, db, job->leaf.record_type, job->subject,
                             job->leaf.record_version, job->stored,
                             job->stored_len, &job->created_record, &refusal);
    if (rc == -ONCE_ERR_STORAGE_FULL || rc == -ONCE_ERR_IO ||
        rc == -ONCE_ERR_NO_MEMORY) {
        *err = refusal;
        return rc;
    }
    if (rc == 0)
        return 0;
    (rc == -ONCE_ERR_STALE_VERSION ? diag_info : diag_warn)(
        "writer", "refused %s from %s (session %016llx seq %llu, subject "
        "#%s): %s: %s",
        envelope_kind_name((int)job->leaf.kind, "publish"),
        job->sender, (unsigned long long)job->session,
        (unsigned long long)job->seq, job->subject_tag,
        once_error_name(-rc), refusal.message);
    /* The refusal replaces the answer. */
    if (error_body(scratch, rc, refusal.message) < 0 ||
        (job->own_answer = malloc(scratch->len)) == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    memcpy(job->own_answer, scratch->data, scratch->len);
    job->answer = job->own_answer;
    job->answer_len = scratch->len;
    job->answer_kind = ONCE__KIND__KIND_ERROR;
    job->refusal = -rc;
    return 0;
}

/* Encodes the job's LogLeaf into job->leaf_bytes and appends it with its
 * evidence. */
int write_step_leaf(MDB_txn *txn, const auditlog *log, write_job *job,
                    once_error *err)
{
    Once__LogLeaf leaf = ONCE__LOG_LEAF__INIT;
    const leaf_facts *f = &job->leaf;
    bool refused = job->answer_kind == ONCE__KIND__KIND_ERROR;
    size_t len;

    leaf.time = f->time;
    leaf.kind = (Once__Kind)f->kind;
    leaf.department = (char *)f->department;
    leaf.record_type = (char *)f->record_type;
    if (f->has_subject_hash) {
        leaf.subject_hash.data = (uint8_t *)f->subject_hash;
        leaf.subject_hash.len = sizeof(f->subject_hash);
    }
    leaf.purpose = (char *)f->purpose;
    leaf.case_id = (char *)f->case_id;
    /* "" is left out of the encoding (proto3), so a leaf without an
     * acting user is byte for byte the leaf of before the field. */
    leaf.user = (char *)f->user;
    leaf.decision = refused ? ONCE__DECISION__DECISION_REFUSED
                            : ONCE__DECISION__DECISION_GRANTED;
    leaf.error = refused ? (Once__ErrorCode)job->refusal
                         : ONCE__ERROR_CODE__ERROR_NONE;
    leaf.record_version = f->record_version;
    if (f->has_record_digest) {
        leaf.record_digest.data = (uint8_t *)f->record_digest;
        leaf.record_digest.len = sizeof(f->record_digest);
    }
    leaf.envelope_digest.data = (uint8_t *)f->envelope_digest;
    leaf.envelope_digest.len = sizeof(f->envelope_digest);
    len = once__log_leaf__get_packed_size(&leaf);
    job->leaf_bytes = malloc(len);
    if (job->leaf_bytes == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    job->leaf_len = once__log_leaf__pack(&leaf, job->leaf_bytes);
    return auditlog_append(txn, log, job->leaf_bytes, job->leaf_len,
                           job->evidence, job->evidence_len, &job->leaf_index,
                           err);
}

/* Appends a length-delimited field to an encoded message. */
static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Makes job->reply: the answer followed by its Receipt field, and keeps it
 * in the replies table when a retry is to get it again: whole, or for a
 * granted request without a proof as what rebuilds it (replies.c). */
int write_step_reply(MDB_txn *txn, store *db, const auditlog *log,
                     uint64_t tree_size, const char *note, size_t note_len,
                     write_job *job, once_error *err)
{
    Once__Receipt receipt = ONCE__RECEIPT__INIT;
    merkle_hash proof[MERKLE_MAX_PROOF];
    ProtobufCBinaryData proof_items[MERKLE_MAX_PROOF];
    size_t proof_len = 0, i, len;
    unsigned field;
    uint8_t *p;
    int rc;

    if (job->no_leaf) { /* an acknowledgement: no leaf, no receipt */
        job->reply = malloc(job->answer_len > 0 ? job->answer_len : 1);
        if (job->reply == NULL)
            return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
        memcpy(job->reply, job->answer, job->answer_len);
        job->reply_len = job->answer_len;
        job->reply_kind = job->answer_kind;
        return 0;
    }
    receipt.leaf_index = job->leaf_index;
    if (job->want_proof) {
        rc = auditlog_inclusion_proof(txn, log, job->leaf_index,
                                      tree_size, proof, &proof_len, err);
        if (rc < 0)
            return rc;
        for (i = 0; i < proof_len; i++) {
            proof_items[i].data = proof[i];
            proof_items[i].len = sizeof(proof[i]);
        }
        receipt.checkpoint.data = (uint8_t *)note;
        receipt.checkpoint.len = note_len;
        receipt.n_proof = proof_len;
        receipt.proof = proof_items;
        receipt.leaf.data = job->leaf_bytes;
        receipt.leaf.len = job->leaf_len;
    }
    len = once__receipt__get_packed_size(&receipt);
    field = job->answer_kind == ONCE__KIND__KIND_ERROR ? 3 : 7;
    job->reply = malloc(job->answer_len + 1 + 10 + len);
    if (job->reply == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    memcpy(job->reply, job->answer, job->answer_len);
    p = job->reply + job->answer_len;
    *p++ = (uint8_t)(field << 3 | 2);
    p = put_varint(p, len);
    p += once__receipt__pack(&receipt, p);
    job->reply_len = (size_t)(p - job->reply);
    job->reply_kind = job->answer_kind;
    if (!job->store_reply)
        return 0;
    if (job->rebuildable && !job->want_proof &&
        job->answer_kind == ONCE__KIND__KIND_RESPONSE)
        return replay_reply_put_rebuilt(
            txn, db, job->sent_at, job->sender, job->session, job->seq,
            job->leaf.envelope_digest, job->leaf.record_version,
            job->disclosed, job->leaf_index, err);
    return replay_reply_put(txn, db, job->sent_at, job->sender,
                            job->session, job->seq,
                            job->leaf.envelope_digest, job->reply_kind,
                            job->reply, job->reply_len, err);
}
