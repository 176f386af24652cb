/*
 * check_proof.c - `once-audit check-proof`: a C2SP tlog-proof checked
 * offline.
 *
 * Whoever receives a proof file from an auditor checks it here with the
 * broker's public key alone: the checkpoint's signature under the log's
 * origin, and that the leaf hashes into the tree the checkpoint signs at
 * the index the proof gives (RFC 9162 2.1.3.2). The leaf comes from the
 * proof's extra line, or from a file or an export when the proof carries
 * none. What the leaf says is then printed, escaped, since the leaf is
 * outside text like everything in an export.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "commands.h"
#include "escape.h"
#include "export_dir.h"
#include "merkle.h"
#include "once.pb-c.h"
#include "tlog_proof.h"
#include "util.h"

static void usage_check_proof(FILE *f)
{
    fprintf(f,
            "usage: once-audit check-proof FILE --key BROKER.pub\n"
            "                              [--origin NAME]\n"
            "                              [--leaf-file F | --dir DIR]\n"
            "\n"
            "Checks a C2SP tlog-proof: the checkpoint's signature by the\n"
            "broker, and that the leaf is in the tree it signs at the index\n"
            "given. The leaf comes from --leaf-file (raw LogLeaf bytes), from\n"
            "an export (--dir), or else from the proof's extra line.\n");
}

static void print_leaf_summary(const uint8_t *data, size_t len)
{
    Once__LogLeaf *leaf = once__log_leaf__unpack(NULL, len, data);
    char t[32];

    if (leaf == NULL) {
        printf("leaf: not a LogLeaf\n");
        return;
    }
    format_time(leaf->time, t);
    printf("leaf: %s ", t);
    audit_put_escaped(stdout, leaf->department);
    printf(" %s type ", kind_name((int)leaf->kind));
    audit_put_escaped(stdout, leaf->record_type);
    fputs(" purpose \"", stdout);
    audit_put_escaped(stdout, leaf->purpose);
    fputs("\" case \"", stdout);
    audit_put_escaped(stdout, leaf->case_id);
    fputs("\" ", stdout);
    /* Only when the request named one: other leaves print as before. */
    if (leaf->user[0] != '\0') {
        fputs("official \"", stdout);
        audit_put_escaped(stdout, leaf->user);
        fputs("\" ", stdout);
    }
    put_decision(stdout, leaf);
    fputc('\n', stdout);
    once__log_leaf__free_unpacked(leaf, NULL);
}

int cmd_check_proof(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"leaf-file", required_argument, NULL, 'l'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *origin = NULL, *leaf_file = NULL, *dir = NULL;
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES], *leaf = NULL;
    char name[CHECKPOINT_MAX_ORIGIN + 1], why[256];
    merkle_hash leaf_hash;
    uint8_t *text;
    size_t text_len, leaf_len = 0;
    tlog_proof p;
    checkpoint cp;
    once_error err;
    int c, rc = EXIT_PROBLEMS;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'l': leaf_file = optarg; break;
        case 'd': dir = optarg; break;
        case 'h': usage_check_proof(stdout); return EXIT_CLEAN;
        default: usage_check_proof(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || key == NULL || (leaf_file && dir)) {
        usage_check_proof(stderr);
        return EXIT_USAGE;
    }
    if (load_public_key(key, pk) < 0)
        return EXIT_USAGE;
    rc = read_at(AT_FDCWD, argv[optind], &text, &text_len);
    if (rc < 0 || text_len > TLOG_PROOF_MAX_BYTES) {
        fprintf(stderr, "once-audit: cannot read %s: %s\n", argv[optind],
                rc < 0 && rc != -EFBIG ? strerror(-rc) : "too large");
        if (rc == 0)
            free(text);
        return EXIT_PROBLEMS;
    }
    rc = EXIT_PROBLEMS;
    if (tlog_proof_parse((const char *)text, text_len, &p, &err) < 0) {
        printf("FAIL %s: %s\n", argv[optind], err.message);
        free(text);
        return rc;
    }
    if (origin == NULL) {
        if (checkpoint_note_origin(p.note, p.note_len, name,
                                   sizeof(name)) < 0) {
            printf("FAIL %s: the checkpoint has no origin line\n",
                   argv[optind]);
            goto out;
        }
        origin = name;
    }
    if (checkpoint_verify(p.note, p.note_len, origin, pk, &cp, &err) < 0) {
        printf("FAIL %s: checkpoint: %s\n", argv[optind], err.message);
        goto out;
    }
    if (leaf_file != NULL) {
        int r = read_at(AT_FDCWD, leaf_file, &leaf, &leaf_len);

        if (r < 0) {
            fprintf(stderr, "once-audit: cannot read %s: %s\n", leaf_file,
                    strerror(-r));
            goto out;
        }
    } else if (dir != NULL) {
        export_dir x;
        checkpoint dcp;

        if (export_open(&x, dir) < 0)
            goto out;
        once_error perr = {0};

        if (checkpoint_parse_unverified((const char *)x.note, x.note_len,
                                        &dcp, &perr) < 0)
            snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1,
                     perr.message);
        if (perr.code != 0 ||
            read_entry(x.fd, dcp.size, p.index, &leaf, &leaf_len, why,
                       sizeof(why)) < 0) {
            fprintf(stderr, "once-audit: %s: cannot read leaf %" PRIu64
                    ": %s\n", dir, p.index, why);
            export_close(&x);
            goto out;
        }
        export_close(&x);
    } else if (p.has_extra) {
        leaf = p.extra;
        leaf_len = p.extra_len;
        p.extra = NULL;
    } else {
        fprintf(stderr, "once-audit: the proof carries no leaf; give "
                "--leaf-file or --dir\n");
        goto out;
    }
    merkle_leaf_hash(leaf, leaf_len, leaf_hash);
    if (merkle_verify_inclusion(p.index, cp.size, leaf_hash, p.hashes,
                                p.nhashes, cp.root) < 0) {
        printf("FAIL %s: leaf %" PRIu64 " is not in the tree of %" PRIu64
               " leaves this checkpoint signs\n", argv[optind], p.index,
               cp.size);
        goto out;
    }
    print_leaf_summary(leaf, leaf_len);
    printf("proof: OK: leaf %" PRIu64 " is in the tree of %" PRIu64 " leaves "
           "signed by ", p.index, cp.size);
    audit_put_escaped(stdout, origin);
    fputc('\n', stdout);
    rc = EXIT_CLEAN;
out:
    free(leaf);
    tlog_proof_clear(&p);
    free(text);
    return rc;
}
