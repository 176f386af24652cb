/*
 * fuzz_tlog_proof.c - tlog_proof_parse on arbitrary bytes, and what
 * once-audit check-proof does with what it parsed.
 *
 * A tlog-proof comes from whoever wants to convince the auditor, so it is
 * outside bytes. Beyond not crashing: a refusal fills the error; an
 * accepted proof keeps its checkpoint inside the input, up to its end; and
 * since every field has one spelling, writing back what was parsed must
 * give the input byte for byte (so no two different files mean the same
 * proof, and prove and check-proof agree on the format). The seeds are real
 * proofs signed with the fuzz key, so mutations of the index and the
 * hashes get past the checkpoint's signature into the inclusion check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_key.h"
#include "merkle.h"
#include "once/once.h"
#include "tlog_proof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static once_keypair key;
    static int ready;
    const char *text = (const char *)data;
    once_error err = {0};
    merkle_hash leaf_hash;
    checkpoint cp;
    tlog_proof p;
    char *again;
    size_t again_len;

    if (!ready) {
        if (once_init() < 0)
            abort();
        fuzz_key(&key);
        ready = 1;
    }
    if (tlog_proof_parse(text, size, &p, &err) < 0) {
        if (err.code == 0 || err.message[0] == '\0' || p.extra != NULL)
            abort();
        return 0;
    }
    if (p.nhashes > MERKLE_MAX_PROOF || p.note < text ||
        p.note_len != (size_t)(text + size - p.note) ||
        (p.has_extra && p.extra == NULL))
        abort();
    if (tlog_proof_format(&p, &again, &again_len, NULL) < 0)
        abort();
    if (again_len != size || memcmp(again, data, size) != 0)
        abort();
    free(again);
    if (p.has_extra &&
        checkpoint_verify(p.note, p.note_len, "fuzz.example/log",
                          key.public_key, &cp, NULL) == 0) {
        merkle_leaf_hash(p.extra, p.extra_len, leaf_hash);
        /* Either answer may be right for a mutated proof; it must just
         * come back. */
        (void)merkle_verify_inclusion(p.index, cp.size, leaf_hash, p.hashes,
                                      p.nhashes, cp.root);
    }
    tlog_proof_clear(&p);
    return 0;
}
