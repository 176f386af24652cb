/*
 * verify.c - `once-audit verify`: an exported log checked completely.
 *
 * Recomputes every leaf hash from the entry bundles and the whole tree,
 * compares every hash tile, checks every signed checkpoint (signature, and
 * root against the recomputed tree at its size, which also proves each
 * consistent with the next), and checks each leaf against its evidence:
 * the department's signature on the envelope it sent, and the envelope's
 * content against what the leaf records. Every problem is a FAIL line;
 * all are reported, not just the first.
 *
 * This file reads the command line, opens what the run needs (the broker
 * key, the audit key, the auditor's key for sealed evidence, the export,
 * the thread pool), runs the passes in order (verifier.h lists them) and
 * prints the summary with the rate of each pass: an audit of millions of
 * exchanges must say how long the next one will take.
 */
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "commands.h"
#include "escape.h"
#include "util.h"
#include "verifier.h"

static void usage_verify(FILE *f)
{
    fprintf(f,
            "usage: once-audit verify DIR --key BROKER.pub [--origin NAME]\n"
            "                         [--audit-key FILE] [--from INDEX]\n"
            "                         [--save STATE] [--since STATE]\n"
            "                         [--evidence-key AUDITOR.key]\n"
            "                         [--threads N]\n"
            "\n"
            "Checks an exported log completely: recomputes every leaf hash\n"
            "and the whole tree from the entry bundles and compares every\n"
            "hash tile; checks the signature of every checkpoint and that its\n"
            "root is the recomputed root at its size; checks every evidence\n"
            "envelope against the department keys in keys.txt and against\n"
            "its leaf. Every problem is printed as a FAIL line naming the\n"
            "leaf, tile or checkpoint. Exit status 0: all good; 1: problems.\n"
            "\n"
            "  --key FILE        the broker's public key file (64 hex digits)\n"
            "  --origin NAME     the log's origin line (default: the one in\n"
            "                    DIR/checkpoint)\n"
            "  --audit-key FILE  also check every leaf's keyed subject hash\n"
            "  --from INDEX      the export is a range from INDEX: earlier\n"
            "                    entry bundles may be absent (their hashes\n"
            "                    are then only checked through the tiles)\n"
            "  --save STATE      when everything checked out and every leaf's\n"
            "                    evidence was checked, keep the checkpoint\n"
            "                    and keys.txt in directory STATE for --since\n"
            "  --since STATE     a state saved by an earlier run: its\n"
            "                    checkpoint must verify and be the recomputed\n"
            "                    root at its size (so those leaves and their\n"
            "                    envelopes are the ones checked then); their\n"
            "                    envelopes' signatures by keys that have not\n"
            "                    changed are not checked again. Everything\n"
            "                    else is.\n"
            "  --evidence-key FILE  the auditor's secret key file, when the\n"
            "                    evidence is sealed to it (oncectl log export\n"
            "                    --evidence-to): it is opened in memory only;\n"
            "                    without it sealed evidence is not checked\n"
            "  --threads N       worker threads (default: online CPUs)\n");
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"origin", required_argument, NULL, 'o'},
        {"audit-key", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},
        {"since", required_argument, NULL, 's'},
        {"save", required_argument, NULL, 'S'},
        {"evidence-key", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *key = NULL, *origin = NULL, *audit_key = NULL;
    const char *since = NULL, *save = NULL, *evidence_key = NULL;
    char why[512];
    uint64_t checked = 0, unauthenticated = 0, pinned = 0, threads = 0;
    uint64_t from = 0;
    double t0, t_tree, t_ev;
    verifier *v;
    size_t i;
    int c, rc, broken;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'o': origin = optarg; break;
        case 'a': audit_key = optarg; break;
        case 't':
            if (parse_u64(optarg, &threads) < 0 || threads == 0 ||
                threads > 256) {
                fprintf(stderr, "once-audit: --threads takes 1..256\n");
                return EXIT_USAGE;
            }
            break;
        case 'f':
            if (parse_u64(optarg, &from) < 0) {
                fprintf(stderr, "once-audit: --from takes a leaf index\n");
                return EXIT_USAGE;
            }
            break;
        case 's': since = optarg; break;
        case 'S': save = optarg; break;
        case 'e': evidence_key = optarg; break;
        case 'h': usage_verify(stdout); return EXIT_CLEAN;
        default: usage_verify(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || key == NULL) {
        usage_verify(stderr);
        return EXIT_USAGE;
    }
    v = xcalloc(1, sizeof(*v));
    v->from = from;
    if (load_public_key(key, v->broker_pk) < 0) {
        free(v);
        return EXIT_USAGE;
    }
    if (audit_key != NULL) {
        once_error err;

        if (audit_key_load(v->audit_key, audit_key, &err) < 0) {
            fprintf(stderr, "once-audit: %s\n", err.message);
            free(v);
            return EXIT_USAGE;
        }
        v->have_audit_key = 1;
    }
    if (audit_evidence_load_key(&v->evidence, evidence_key, why,
                                sizeof(why)) < 0) {
        fprintf(stderr, "once-audit: %s\n", why);
        sodium_memzero(v->audit_key, sizeof(v->audit_key));
        free(v);
        return EXIT_USAGE;
    }
    if (export_open(&v->x, argv[optind]) < 0) {
        free(v);
        return EXIT_PROBLEMS;
    }
    if (origin != NULL) {
        snprintf(v->origin, sizeof(v->origin), "%s", origin);
    } else if (checkpoint_note_origin((const char *)v->x.note,
                                      v->x.note_len, v->origin,
                                      sizeof(v->origin)) < 0) {
        fprintf(stderr, "once-audit: %s/checkpoint has no origin line\n",
                v->x.path);
        export_close(&v->x);
        free(v);
        return EXIT_PROBLEMS;
    }
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        threads = n > 0 ? (uint64_t)n : 1;
    }
    v->threads = (int)threads;
    if (pool_start(&v->pool, v->threads) < 0) {
        fprintf(stderr, "once-audit: cannot start worker threads\n");
        export_close(&v->x);
        free(v);
        return EXIT_PROBLEMS;
    }

    t0 = now_seconds();
    rc = load_checkpoints(v);
    if (rc == 0 && since != NULL)
        load_state(v, since);
    v->problems += report_flush(&v->found);
    if (rc < 0) {
        printf("FAIL no checkpoint in %s verifies with this key as ",
               v->x.path);
        audit_put_escaped(stdout, v->origin);
        printf(": nothing can be checked\n");
        v->problems++;
        goto done;
    }
    broken = verify_tree(v) < 0;
    v->problems += report_flush(&v->found);
    t_tree = now_seconds() - t0;
    if (v->pruned_until > 0)
        printf("note: leaves [0, %" PRIu64 ") have no entry bundles in this "
               "export (--from); their hashes come from tile/0 and were "
               "checked against the checkpoints only\n", v->pruned_until);
    printf("tree: %" PRIu64 " leaves, %zu checkpoints, %" PRIu64 " tiles in "
           "%.2f s: %.0f leaves/s%s\n", v->size, v->ncps, v->tiles_checked,
           t_tree, t_tree > 0 ? (double)v->size / t_tree : 0.0,
           broken ? " (stopped early)" : "");
    fflush(stdout);

    t0 = now_seconds();
    keys_load(v->x.fd, &v->keys, &v->found);
    v->evidence_from = kept_size_confirmed(v);
    if (evidence_readable(v, why, sizeof(why)) < 0) {
        report_add(&v->found, "%s", why);
        v->problems += report_flush(&v->found);
        printf("evidence: not checked\n");
        goto done;
    }
    v->problems += report_flush(&v->found);
    run_evidence_pass(v, &checked, &unauthenticated, &pinned);
    t_ev = now_seconds() - t0;
    printf("evidence: %" PRIu64 " envelopes in %.2f s: %.0f envelopes/s with "
           "%d threads", checked, t_ev,
           t_ev > 0 ? (double)checked / t_ev : 0.0, v->threads);
    if (pinned > 0)
        printf("; %" PRIu64 " signatures below the saved state's %" PRIu64
               " leaves were checked by an earlier run", pinned,
               v->evidence_from);
    if (unauthenticated > 0)
        printf(" (%" PRIu64 " refusals have no signature to check: of "
               "unknown senders, or with their evidence omitted)",
               unauthenticated);
    printf("\n");
    if (v->have_audit_key)
        printf("subject hashes: checked with the audit key\n");
done:
    if (v->problems == 0)
    {
        printf("verify: OK: %s, tree size %" PRIu64 ", origin ", v->x.path,
               v->size);
        audit_put_escaped(stdout, v->origin);
        fputc('\n', stdout);
    }
    else
        printf("verify: FAILED: %zu problems\n", v->problems);
    rc = v->problems == 0 ? EXIT_CLEAN : EXIT_PROBLEMS;
    if (save != NULL && v->problems > 0) {
        printf("state not saved: the run found problems\n");
    } else if (save != NULL && v->pruned_until > v->evidence_from) {
        printf("state not saved: the evidence of leaves [%" PRIu64 ", %"
               PRIu64 ") was not in this export\n", v->evidence_from,
               v->pruned_until);
    } else if (save != NULL) {
        once_error err;

        if (save_state(v, save, &err) < 0) {
            fprintf(stderr, "once-audit: cannot save the state in %s: %s\n",
                    save, err.message);
            rc = EXIT_PROBLEMS;
        } else {
            printf("state saved in %s: verify the next export with "
                   "--since %s\n", save, save);
        }
    }
    pool_stop(&v->pool);
    for (i = 0; i < v->ncps; i++)
        free(v->cps[i].text);
    free(v->cps);
    free(v->entries_ok);
    free(v->entries_digest);
    free(v->keys.keys);
    free(v->kept_keys.keys);
    report_free(&v->found);
    export_close(&v->x);
    sodium_memzero(v->audit_key, sizeof(v->audit_key));
    audit_evidence_clear(&v->evidence);
    free(v);
    return rc;
}
