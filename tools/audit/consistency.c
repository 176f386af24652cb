/*
 * consistency.c - `once-audit consistency`: the log only grew since a
 * checkpoint kept earlier.
 *
 * An auditor (or a department, or anyone) who kept a signed checkpoint can
 * later show that the log of a newer export extends it: both checkpoints
 * must verify, the root of the export's tree at the old size must be the
 * old root, and an RFC 9162 consistency proof built from the export's
 * tiles (tile_reader.c) must verify from the old checkpoint to the new
 * one (RFC 9162 2.1.4.2). A broker that rewrote history, even once and
 * even consistently in the new export, fails here against the old
 * signature.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "commands.h"
#include "export_dir.h"
#include "merkle.h"
#include "merkle_nodes.h"
#include "tile_reader.h"
#include "util.h"

static void usage_consistency(FILE *f)
{
    fprintf(f,
            "usage: once-audit consistency OLD_CHECKPOINT DIR --key "
            "BROKER.pub\n"
            "                              [--origin NAME]\n"
            "\n"
            "Shows that the log only grew since OLD_CHECKPOINT, a signed\n"
            "checkpoint you kept: both checkpoints must verify, the root of\n"
            "the export's tree at the old size must be the old root, and an\n"
            "RFC 9162 consistency proof built from the export's tiles must\n"
            "verify from the old checkpoint to DIR/checkpoint.\n");
}

int cmd_consistency(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *origin = NULL;
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES], *old_note = NULL;
    char name[CHECKPOINT_MAX_ORIGIN + 1];
    merkle_hash root, proof[MERKLE_MAX_PROOF];
    checkpoint old_cp, new_cp;
    tile_reader tr;
    export_dir x;
    once_error err;
    size_t old_len, proof_len;
    int c, rc;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'h': usage_consistency(stdout); return EXIT_CLEAN;
        default: usage_consistency(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 2 || key == NULL) {
        usage_consistency(stderr);
        return EXIT_USAGE;
    }
    if (load_public_key(key, pk) < 0)
        return EXIT_USAGE;
    rc = read_at(AT_FDCWD, argv[optind], &old_note, &old_len);
    if (rc < 0) {
        fprintf(stderr, "once-audit: cannot read %s: %s\n", argv[optind],
                strerror(-rc));
        return EXIT_PROBLEMS;
    }
    if (export_open(&x, argv[optind + 1]) < 0) {
        free(old_note);
        return EXIT_PROBLEMS;
    }
    memset(&tr, 0, sizeof(tr));
    rc = EXIT_PROBLEMS;
    if (origin == NULL) {
        if (checkpoint_note_origin((const char *)x.note, x.note_len, name,
                                   sizeof(name)) < 0) {
            printf("FAIL %s/checkpoint has no origin line\n", x.path);
            goto out;
        }
        origin = name;
    }
    if (checkpoint_verify((const char *)old_note, old_len, origin, pk,
                          &old_cp, &err) < 0) {
        printf("FAIL old checkpoint %s: %s\n", argv[optind], err.message);
        goto out;
    }
    if (checkpoint_verify((const char *)x.note, x.note_len, origin, pk,
                          &new_cp, &err) < 0) {
        printf("FAIL %s/checkpoint: %s\n", x.path, err.message);
        goto out;
    }
    printf("old checkpoint: size %" PRIu64 "\nexport checkpoint: size %" PRIu64
           "\n", old_cp.size, new_cp.size);
    if (old_cp.size > new_cp.size) {
        printf("FAIL the old checkpoint (size %" PRIu64 ") is newer than the "
               "export (size %" PRIu64 "): export again\n", old_cp.size,
               new_cp.size);
        goto out;
    }
    tr.dirfd = x.fd;
    tr.size = new_cp.size;
    if (merkle_nodes_root(tile_node, &tr, old_cp.size, root) < 0) {
        printf("FAIL cannot compute the root at size %" PRIu64 ": %s\n",
               old_cp.size, tr.why);
        goto out;
    }
    if (sodium_memcmp(root, old_cp.root, MERKLE_HASH_BYTES) != 0) {
        printf("FAIL the export's tree at size %" PRIu64 " has another root "
               "than the old checkpoint: the log was rewritten, not only "
               "grown\n", old_cp.size);
        goto out;
    }
    if (merkle_nodes_root(tile_node, &tr, new_cp.size, root) < 0 ||
        sodium_memcmp(root, new_cp.root, MERKLE_HASH_BYTES) != 0) {
        printf("FAIL the export's tiles do not lead to its checkpoint's root; "
               "run once-audit verify\n");
        goto out;
    }
    if (old_cp.size > 0) {
        if (merkle_nodes_consistency_proof(tile_node, &tr, old_cp.size,
                                           new_cp.size, proof,
                                           &proof_len) < 0) {
            printf("FAIL cannot build the consistency proof: %s\n", tr.why);
            goto out;
        }
    } else {
        proof_len = 0;
    }
    if (merkle_verify_consistency(old_cp.size, new_cp.size, old_cp.root,
                                  new_cp.root, proof, proof_len) < 0) {
        printf("FAIL the consistency proof from %" PRIu64 " to %" PRIu64
               " does not verify\n", old_cp.size, new_cp.size);
        goto out;
    }
    printf("consistency proof: %zu hashes, verified (RFC 9162 2.1.4.2)\n",
           proof_len);
    printf("consistency: OK: the log of size %" PRIu64 " extends the one of "
           "size %" PRIu64 "\n", new_cp.size, old_cp.size);
    rc = EXIT_CLEAN;
out:
    tile_reader_free(&tr);
    export_close(&x);
    free(old_note);
    return rc;
}
