/*
 * main.c - once-audit, the auditor's tool for an exported once exchange log.
 *
 * It never talks to the broker. Everything it concludes follows from the
 * export directory (docs/AUDIT.md, broker/export.c) and the broker's public
 * key, which the auditor obtained out of band: if the broker, its operator
 * or anyone who handled the export changed, dropped or invented an
 * exchange, some hash, signature or digest here stops matching, and the
 * tool says which leaf, tile or checkpoint it is.
 *
 *   verify       recomputes every leaf hash from the entry bundles and the
 *                whole tree, compares every hash tile, checks every signed
 *                checkpoint (signature, and root against the recomputed
 *                tree at its size, which also proves each consistent with
 *                the next), and checks each leaf against its evidence: the
 *                department's signature on the envelope it sent, and the
 *                envelope's content against what the leaf records.
 *   prove        writes a C2SP tlog-proof for one leaf;
 *   check-proof  checks one, offline.
 *   consistency  shows that the log only grew since a checkpoint kept
 *                earlier.
 *   subject      the citizen's access report: every exchange about one
 *                subject, found through the keyed subject hash.
 *
 * Speed. A large deployment logs millions of exchanges, and an audit that
 * takes a day is an audit nobody runs: verify's tree pass hashes bundles
 * of 256 leaves on a thread pool in O(n / 256) memory (verify_tree.c), its
 * evidence pass checks one Ed25519 signature per leaf on the same pool and
 * reports its own rate (verify_evidence.c), and a later run that starts
 * from the state an earlier one saved checks only the new signatures
 * (verify_state.c).
 *
 * The parts, one file each under tools/audit/, each depending only on the
 * ones below it:
 *
 *   main.c                 the command word and --help (this file)
 *   verify.c, prove.c, check_proof.c, consistency.c, subject.c
 *                          one command each (commands.h)
 *   verify_checkpoints.c, verify_state.c, verify_tree.c,
 *   verify_evidence.c      the passes of verify (verifier.h)
 *   tile_reader.c          the hash tiles as Merkle nodes, for proofs
 *   keyring.c              the department keys of keys.txt
 *   export_dir.c           reading an export, every file bounded
 *   sealed_evidence.c      evidence sealed to the auditor's key
 *   pool.c                 the thread pool
 *   report.c               FAIL lines, collected per task
 *   escape.c               text from the log, printed escaped
 *   util.c                 exit codes, allocation, times, kinds
 *
 * Exit status: 0 when everything checked out, 1 on any problem found (all
 * are reported, not just the first), 2 on a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "once/once.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: once-audit COMMAND [ARGS]  (COMMAND --help for details)\n"
            "\n"
            "  verify DIR --key BROKER.pub     check an exported log\n"
            "  prove DIR INDEX [-o FILE]       write a tlog-proof of one leaf\n"
            "  check-proof FILE --key BROKER.pub\n"
            "                                  check a tlog-proof\n"
            "  consistency OLD_CHECKPOINT DIR --key BROKER.pub\n"
            "                                  show the log only grew\n"
            "  subject DIR --audit-key FILE --type T --subject ID\n"
            "                                  list the exchanges about one "
            "subject\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"verify", cmd_verify},       {"prove", cmd_prove},
        {"check-proof", cmd_check_proof},
        {"consistency", cmd_consistency},
        {"subject", cmd_subject},
    };
    size_t i;

    if (once_init() < 0) {
        fprintf(stderr, "once-audit: cannot initialize libsodium\n");
        return EXIT_PROBLEMS;
    }
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_CLEAN;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "once-audit: unknown command %s\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
