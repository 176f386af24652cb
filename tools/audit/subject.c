/*
 * subject.c - `once-audit subject`: the citizen's access report.
 *
 * A person (or an enterprise) may ask which departments read records
 * about them, when, and for what. Leaves never hold the subject itself,
 * only HMAC-SHA-256(audit key, type || 0x00 || subject) (lib/audit_hash.c),
 * so that the log can be published and nobody without the deployment's
 * audit key can tell whose exchanges a leaf records; with the key, this
 * command computes the hash for one subject and lists every leaf that
 * carries it, one tab-separated row each. The last column is the acting
 * official a request named (Once-User at the gateway, PROTOCOL.md 4.3),
 * empty when it named none: the department answers for the request, the
 * official is who in it asked; it is last so that the columns before it
 * keep their places for scripts written before it. Every field from the
 * log is printed escaped (escape.c): a case id holding a tab and a newline
 * must not add a forged row to a citizen's report.
 *
 * It only reads the entries; run `once-audit verify` on the export first
 * to know they are the logged ones.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "audit_hash.h"
#include "checkpoint.h"
#include "commands.h"
#include "escape.h"
#include "export_dir.h"
#include "once.pb-c.h"
#include "tlog_tiles.h"
#include "util.h"

static void usage_subject(FILE *f)
{
    fprintf(f,
            "usage: once-audit subject DIR --audit-key FILE --type TYPE "
            "--subject ID\n"
            "\n"
            "Lists every exchange in the export about one subject (a person's\n"
            "resident ID or an enterprise's credit code) under one record\n"
            "type: when, which department, what it did, for which purpose\n"
            "and case, whether it was granted, and the official who asked\n"
            "when the request named one. Leaves name subjects only\n"
            "by HMAC-SHA-256(audit key, type || 0x00 || subject), so the\n"
            "deployment's audit key file (64 hex digits, mode 0600) is\n"
            "needed. Run once-audit verify on DIR first: this command only\n"
            "reads the entries.\n");
}

int cmd_subject(int argc, char **argv)
{
    static const struct option opts[] = {
        {"audit-key", required_argument, NULL, 'a'},
        {"type", required_argument, NULL, 't'},
        {"subject", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *audit_key = NULL, *type = NULL, *subject = NULL;
    uint8_t key[AUDIT_KEY_BYTES], hash[AUDIT_SUBJECT_HASH_BYTES];
    size_t offs[TLOG_TILE_WIDTH], lens[TLOG_TILE_WIDTH];
    uint64_t b, count, found = 0, missing = 0;
    char path[TLOG_PATH_MAX], why[96], t[32];
    export_dir x;
    checkpoint cp;
    once_error err;
    int c, rc = EXIT_CLEAN;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': audit_key = optarg; break;
        case 't': type = optarg; break;
        case 's': subject = optarg; break;
        case 'h': usage_subject(stdout); return EXIT_CLEAN;
        default: usage_subject(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !audit_key || !type || !subject) {
        usage_subject(stderr);
        return EXIT_USAGE;
    }
    if (audit_key_load(key, audit_key, &err) < 0) {
        fprintf(stderr, "once-audit: %s\n", err.message);
        return EXIT_USAGE;
    }
    audit_subject_hash(key, type, subject, hash);
    sodium_memzero(key, sizeof(key));
    if (export_open(&x, argv[optind]) < 0)
        return EXIT_PROBLEMS;
    if (checkpoint_parse_unverified((const char *)x.note, x.note_len, &cp,
                                    NULL) < 0) {
        fprintf(stderr, "once-audit: %s/checkpoint is malformed\n", x.path);
        export_close(&x);
        return EXIT_PROBLEMS;
    }
    printf("# exchanges about one %s subject in %s (tree size %" PRIu64 ")\n",
           type, x.path, cp.size);
    printf("# leaf\ttime (UTC)\tdepartment\tkind\tversion\tpurpose\tcase id\t"
           "decision\tofficial\n");
    count = tlog_tile_count(cp.size, 0);
    for (b = 0; b < count; b++) {
        unsigned width = tlog_tile_width(cp.size, 0, b), j;
        uint8_t *data;
        size_t len;

        tile_path(path, "tile/entries", b, width);
        if (read_at(x.fd, path, &data, &len) < 0) {
            missing += width;
            continue;
        }
        if (split_bundle(data, len, width, TLOG_ENTRY_LENGTH_BYTES, offs,
                         lens, why, sizeof(why)) < 0) {
            fprintf(stderr, "once-audit: %s: malformed (%s)\n", path, why);
            rc = EXIT_PROBLEMS;
            free(data);
            continue;
        }
        for (j = 0; j < width; j++) {
            Once__LogLeaf *leaf =
                once__log_leaf__unpack(NULL, lens[j], data + offs[j]);

            if (leaf == NULL)
                continue;
            if (strcmp(leaf->record_type, type) == 0 &&
                leaf->subject_hash.len == sizeof(hash) &&
                memcmp(leaf->subject_hash.data, hash, sizeof(hash)) == 0) {
                format_time(leaf->time, t);
                /* Tabs separate the columns: the fields from the log are
                 * escaped so that none holds a tab or a newline. */
                printf("%" PRIu64 "\t%s\t", b * TLOG_TILE_WIDTH + j, t);
                audit_put_escaped(stdout, leaf->department);
                printf("\t%s\t%" PRIu64 "\t", kind_name((int)leaf->kind),
                       leaf->record_version);
                audit_put_escaped(stdout, leaf->purpose);
                fputc('\t', stdout);
                audit_put_escaped(stdout, leaf->case_id);
                fputc('\t', stdout);
                put_decision(stdout, leaf);
                fputc('\t', stdout);
                audit_put_escaped(stdout, leaf->user);
                fputc('\n', stdout);
                found++;
            }
            once__log_leaf__free_unpacked(leaf, NULL);
        }
        free(data);
    }
    printf("# %" PRIu64 " exchanges found", found);
    if (missing > 0)
        printf("; %" PRIu64 " leaves are not in this export", missing);
    printf("\n");
    export_close(&x);
    return rc;
}
