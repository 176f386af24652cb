/*
 * prove.c - `once-audit prove`: a C2SP tlog-proof for one leaf.
 *
 * An auditor who found something in the log must be able to show it to
 * someone who does not have the export: a citizen, a court, another
 * department. The proof file (c2sp.org/tlog-proof@v1) holds the inclusion
 * proof, the signed checkpoint and the leaf itself as its extra data, so
 * it stands alone and `once-audit check-proof` needs only the broker's
 * public key. The proof is built from the export's hash tiles
 * (tile_reader.c) and checked against the checkpoint before it is written:
 * a proof that does not hold is never handed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "commands.h"
#include "export_dir.h"
#include "merkle.h"
#include "merkle_nodes.h"
#include "tile_reader.h"
#include "tlog_proof.h"
#include "util.h"

static void usage_prove(FILE *f)
{
    fprintf(f,
            "usage: once-audit prove DIR INDEX [-o FILE]\n"
            "\n"
            "Writes a C2SP tlog-proof (c2sp.org/tlog-proof@v1) that leaf\n"
            "INDEX is in the tree DIR/checkpoint signs: the inclusion proof,\n"
            "the checkpoint, and the leaf itself as the proof's extra data,\n"
            "so the file stands alone. Check it with once-audit check-proof.\n"
            "\n"
            "  -o, --output FILE  write here instead of standard output\n");
}

int cmd_prove(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *out_path = NULL;
    merkle_hash leaf_hash;
    tlog_proof proof;
    tile_reader tr;
    export_dir x;
    checkpoint cp;
    once_error err;
    uint64_t index;
    uint8_t *leaf = NULL;
    size_t leaf_len = 0, text_len;
    char why[256], *text = NULL;
    FILE *out;
    int c, written, rc = EXIT_PROBLEMS;

    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'h': usage_prove(stdout); return EXIT_CLEAN;
        default: usage_prove(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 2 || parse_u64(argv[optind + 1], &index) < 0) {
        usage_prove(stderr);
        return EXIT_USAGE;
    }
    if (export_open(&x, argv[optind]) < 0)
        return EXIT_PROBLEMS;
    memset(&tr, 0, sizeof(tr));
    if (checkpoint_parse_unverified((const char *)x.note, x.note_len, &cp,
                                    NULL) < 0) {
        fprintf(stderr, "once-audit: %s/checkpoint is malformed\n", x.path);
        goto out;
    }
    if (index >= cp.size) {
        fprintf(stderr, "once-audit: leaf %" PRIu64 " is not in the tree of "
                "%" PRIu64 " leaves\n", index, cp.size);
        goto out;
    }
    tr.dirfd = x.fd;
    tr.size = cp.size;
    if (read_entry(x.fd, cp.size, index, &leaf, &leaf_len, why,
                   sizeof(why)) == 0) {
        merkle_leaf_hash(leaf, leaf_len, leaf_hash);
    } else if (tile_node(&tr, 0, index, leaf_hash) < 0) {
        fprintf(stderr, "once-audit: leaf %" PRIu64 ": %s; %s\n", index, why,
                tr.why);
        goto out;
    }
    memset(&proof, 0, sizeof(proof));
    if (merkle_nodes_inclusion_proof(tile_node, &tr, index, cp.size,
                                     proof.hashes, &proof.nhashes) < 0) {
        fprintf(stderr, "once-audit: cannot build the proof: %s\n", tr.why);
        goto out;
    }
    /* Refuse to hand out a proof that does not hold. */
    if (merkle_verify_inclusion(index, cp.size, leaf_hash, proof.hashes,
                                proof.nhashes, cp.root) < 0) {
        fprintf(stderr, "once-audit: the tiles in %s do not lead to the "
                "checkpoint's root; run once-audit verify\n", x.path);
        goto out;
    }
    /* Without an entry bundle the proof still holds, but carries no
     * leaf: check-proof then needs --leaf-file or --dir. */
    proof.has_extra = leaf != NULL;
    proof.extra = leaf;
    proof.extra_len = leaf_len;
    proof.index = index;
    proof.note = (const char *)x.note;
    proof.note_len = x.note_len;
    if (tlog_proof_format(&proof, &text, &text_len, &err) < 0) {
        fprintf(stderr, "once-audit: cannot write the proof: %s\n",
                err.message);
        goto out;
    }
    out = stdout;
    if (out_path != NULL) {
        /* Never through a link planted at the name (file_io.c's rule). */
        int fd = open(out_path,
                      O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                      0644);

        out = fd < 0 ? NULL : fdopen(fd, "w");
        if (out == NULL && fd >= 0)
            close(fd);
    }
    if (out == NULL) {
        fprintf(stderr, "once-audit: cannot create %s: %s\n", out_path,
                strerror(errno));
        goto out;
    }
    written = fwrite(text, 1, text_len, out) == text_len;
    if (out_path ? fclose(out) != 0 : fflush(out) != 0)
        written = 0;
    if (!written) {
        fprintf(stderr, "once-audit: cannot write the proof\n");
        goto out;
    }
    rc = EXIT_CLEAN;
out:
    free(text);
    free(leaf);
    tile_reader_free(&tr);
    export_close(&x);
    return rc;
}
