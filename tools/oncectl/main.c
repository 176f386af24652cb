/*
 * main.c - oncectl, the operator's tool for a once broker home.
 *
 *     oncectl [--home HOME] COMMAND [ARGS]
 *
 * A broker home is a directory (mode 0700) holding once.conf, the broker's
 * key pair, the audit key and the LMDB database. `init` makes one; `keygen`
 * makes a department's key pair; `dept`, `type` and `grant` change the
 * policy tables in the database; `log status` and `log export` read the
 * exchange log in it. The console's commands (`console token`, `status`,
 * `top`) are in ../oncectl_console.c: `status` and `top` are the one
 * exception to "oncectl talks to the database", since they show what only
 * the running broker knows, through its console API.
 *
 * oncectl talks to the database, not to the broker: what it changes is in
 * force from onced's next request, with no restart (home.c says why that
 * is safe). A typo is a usage error (exit 2) that names the bad argument;
 * a refusal by the database, an operational error (exit 1) (cli.c).
 *
 * The parts, one file each under tools/oncectl/, each depending only on
 * the ones below it:
 *
 *   main.c          the global options, the command table and dispatch
 *                   (this file)
 *   init.c          init and keygen
 *   dept.c          dept add, list, suspend, resume
 *   type.c          type add, list
 *   grant.c         grant add, list, revoke
 *   subscriptions.c subscriptions
 *   exchange_log.c  log status, log export
 *   home.c          the broker home and its database
 *   cli.c           the option helpers, messages and exit codes
 *
 * A new command is a function in its group's file (commands.h) and one
 * entry in the table below, with its synopsis and --help text.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "home.h"
#include "oncectl_console.h"
#include "text_fields.h"

/* ---- the console (../oncectl_console.c) ---------------------------------- */

static int cmd_console_token(const command *cmd, int argc, char **argv)
{
    int rc = arguments_only(cmd, argc, argv, 0, 0, "");

    if (rc != OPT_END)
        return rc;
    return oncectl_console_token(oncectl_home);
}

static int cmd_status(const command *cmd, int argc, char **argv)
{
    int rc = arguments_only(cmd, argc, argv, 0, 0, "");

    if (rc != OPT_END)
        return rc;
    return oncectl_status(oncectl_home);
}

static int cmd_top(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "iterations", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t n = 0;
    int c, rc;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        if (c == OPT_HELP)
            return EXIT_SUCCESS;
        if (c == OPT_BAD)
            return EXIT_USAGE;
        if (text_parse_u64(optarg, strlen(optarg), &n) < 0 || n > 1000000)
            return usage_error(cmd, "--iterations takes 0 to 1000000");
    }
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    return oncectl_top(oncectl_home, 2000, (unsigned)n);
}

/* ---- dispatch ------------------------------------------------------------ */

static const command commands[] = {
    { NULL, "init",
      "init [DIR] [--listen EP] [--name NAME] [--log-origin ORIGIN]",
      "create a broker home: keys, database, once.conf",
      "Creates a broker home (DIR, or HOME; mode 0700) holding the broker's\n"
      "key pair (broker.key, mode 0600, and broker.pub), the audit key that\n"
      "keys the subject hashes in the exchange log (audit.key, mode 0600),\n"
      "an empty database (db/) and the configuration onced reads\n"
      "(once.conf). Refuses a home that already has a once.conf.\n"
      "\n"
      "Options:\n"
      "  --listen EP          ZeroMQ endpoint the broker binds\n"
      "                       (default " CONFIG_DEFAULT_LISTEN ")\n"
      "  --name NAME          the broker's name, the sender of its replies\n"
      "                       (default " CONFIG_DEFAULT_NAME ")\n"
      "  --log-origin ORIGIN  the exchange log's name, the first line of\n"
      "                       every signed checkpoint; never change it once\n"
      "                       onced has run (default: NAME)\n",
      cmd_init },
    { NULL, "keygen", "keygen OUT",
      "write a department key pair: OUT (0600) and OUT.pub",
      "Generates an Ed25519 key pair for a department: the secret key goes\n"
      "to OUT (mode 0600) and the public key to OUT.pub. Prints the public\n"
      "key in hex. Never overwrites an existing file. Give OUT.pub to the\n"
      "broker's operator for 'oncectl dept add'; OUT stays with the\n"
      "department's system.\n",
      cmd_keygen },
    { "dept", "add", "dept add ID --key PUBFILE [--name TEXT]",
      "register a department and its public key",
      "Registers department ID with the public key in PUBFILE (written by\n"
      "'oncectl keygen'). The department may connect from the next\n"
      "handshake on. An id or a key already registered is refused.\n"
      "\n"
      "Options:\n"
      "  --key PUBFILE   the department's public key file\n"
      "  --name TEXT     a human-readable name\n",
      cmd_dept_add },
    { "dept", "list", "dept list", "list departments",
      "Lists departments in id order: id, status (active or suspended), the\n"
      "first 16 hex digits of the public key, and name.\n",
      cmd_dept_list },
    { "dept", "suspend", "dept suspend ID",
      "refuse a department's connections and messages",
      "Suspends department ID: the broker refuses its new connections and\n"
      "answers its messages with SUSPENDED, from its next request on, until\n"
      "'oncectl dept resume ID'. Records it published stay available.\n",
      cmd_dept_suspend },
    { "dept", "resume", "dept resume ID", "admit a suspended department again",
      "Makes a suspended department ID active again.\n",
      cmd_dept_resume },
    { "type", "add",
      "type add NAME --issuer D1[,D2...] --subject enterprise|person "
      "--fields F1,F2,...",
      "add a record type to the catalogue",
      "Adds record type NAME to the catalogue. Only its issuers (registered\n"
      "departments) may publish or revoke records of it; its subjects are\n"
      "enterprises (Unified Social Credit Code) or persons (resident\n"
      "identity number); a record of it carries the named fields.\n"
      "\n"
      "Options:\n"
      "  --issuer D1[,D2...]          issuing department ids (repeatable)\n"
      "  --subject enterprise|person  what the records are about\n"
      "  --fields F1,F2,...           field names (repeatable)\n",
      cmd_type_add },
    { "type", "list", "type list", "list record types",
      "Lists record types: name, subject kind, issuers and fields.\n",
      cmd_type_list },
    { "grant", "add",
      "grant add --requester D --type T --purpose P --fields F1,F2,...",
      "let a department read fields of a type for a purpose",
      "Lets department D read the named fields of records of type T when\n"
      "its request gives purpose P (exactly). Without a grant a request is\n"
      "refused with NO_GRANT. To change the fields, revoke and add again.\n"
      "\n"
      "Options:\n"
      "  --requester D        the requesting department id\n"
      "  --type T             the record type\n"
      "  --purpose P          the purpose (legal basis), as requests give it\n"
      "  --fields F1,F2,...   the fields it may read (repeatable)\n",
      cmd_grant_add },
    { "grant", "list", "grant list", "list grants",
      "Lists grants by requester, type and purpose, with their fields.\n",
      cmd_grant_list },
    { NULL, "subscriptions", "subscriptions",
      "list the departments' subscriptions to notices",
      "Lists every subscription (PROTOCOL.md 4.9) by department, scope and\n"
      "type: the scope (type, subject or held), the type, \"(one subject)\"\n"
      "for a subscription to one subject (the subject itself is personal\n"
      "data and not printed), the leaf index of the subscribe that made it,\n"
      "and the department's acknowledgement cursor: the leaf up to which it\n"
      "has handled its notices.\n",
      cmd_subscriptions },
    { "grant", "revoke", "grant revoke --requester D --type T --purpose P",
      "withdraw a grant",
      "Withdraws the grant of (D, T, P); the broker refuses D's next request\n"
      "for it with NO_GRANT.\n"
      "\n"
      "Options:\n"
      "  --requester D   the requesting department id\n"
      "  --type T        the record type\n"
      "  --purpose P     the purpose, exactly as granted\n",
      cmd_grant_revoke },
    { "log", "status", "log status",
      "show the exchange log's size and latest signed checkpoint",
      "Prints the number of leaves in the exchange log, the number of\n"
      "checkpoints the broker has signed, and the newest checkpoint (a C2SP\n"
      "signed note: origin, tree size, root hash, signature). Keep a copy\n"
      "of a checkpoint to show later, with 'once-audit consistency', that\n"
      "the log only grew. Reads the database; onced may be running.\n",
      cmd_log_status },
    { "log", "export",
      "log export DIR [--from N] [--to N] [--evidence-to AUDITOR.pub]",
      "write the exchange log to DIR for auditors",
      "Writes the exchange log to DIR for auditors, who check it offline\n"
      "with 'once-audit verify DIR --key broker.pub': the C2SP tlog-tiles\n"
      "layout (checkpoint, hash tiles, entry bundles), the evidence\n"
      "envelopes, every signed checkpoint and the department keys\n"
      "(docs/AUDIT.md). The tree exported is the newest one with a signed\n"
      "checkpoint (up to --to). Runs beside a running onced: the tree\n"
      "size is fixed at the start and read in short read transactions.\n"
      "\n"
      "The evidence (the signed envelopes) holds raw ID numbers and field\n"
      "values: personal data. It goes to DIR/evidence/ with mode 0600 in\n"
      "0700 directories, or, with --evidence-to, sealed to one auditor's\n"
      "key in DIR/evidence-sealed/, so the export can travel. The rest\n"
      "(tiles, entries, checkpoints, keys) is public: 0644. DIR must be\n"
      "yours and writable by nobody else, and a symbolic link anywhere in\n"
      "it is refused.\n"
      "\n"
      "A DIR holding an earlier export of this log is extended: only the\n"
      "leaves after it are written (unless --from says otherwise), full\n"
      "tiles already there must be identical, and the checkpoint moves\n"
      "forward. A DIR holding another log or a newer tree is refused, and\n"
      "so is a log without a signed checkpoint: nothing in it could be\n"
      "verified.\n"
      "\n"
      "Options:\n"
      "  --from N   write the leaves and evidence from leaf N on (rounded\n"
      "             down to a bundle of 256); hash tiles and checkpoints\n"
      "             always cover the whole tree\n"
      "  --to N     export the tree of the newest checkpoint of at most N\n"
      "             leaves instead of the newest one\n"
      "  --evidence-to AUDITOR.pub\n"
      "             seal the evidence to this auditor's public key (a key\n"
      "             pair from 'oncectl keygen'); 'once-audit verify\n"
      "             --evidence-key AUDITOR' opens it\n",
      cmd_log_export },
    { "console", "token", "console token",
      "replace the console's bearer token (console.token)",
      "Writes a new bearer token for the operator's console to\n"
      "HOME/console.token (32 random bytes as 64 hex digits, mode 0600),\n"
      "replacing the old one. onced reads it when it starts: restart it.\n"
      "Every console path but /healthz, /readyz and the dashboard page\n"
      "needs it as 'Authorization: Bearer TOKEN'.\n",
      cmd_console_token },
    { NULL, "status", "status",
      "one screen of the running broker's state, from its console",
      "Prints the running broker's health, log head, map use, exchanges\n"
      "since start (rate, latency), the KPIs (copies avoided, sharing\n"
      "rate, participation), refusals by code and its departments, read\n"
      "from its console (console_listen in once.conf, with the token in\n"
      "console.token).\n",
      cmd_status },
    { NULL, "top", "top [--iterations N]",
      "the status screen, live, every two seconds (q quits)",
      "Shows the 'oncectl status' screen every two seconds, with the\n"
      "exchange rate between screens, until q is pressed (or Ctrl-C).\n"
      "\n"
      "Options:\n"
      "  --iterations N   stop after N screens (0, the default: never)\n",
      cmd_top },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "usage: oncectl [--home HOME] COMMAND [ARGS]\n"
            "\n"
            "Administers a once broker home: its keys, its configuration, the\n"
            "policy in its database (departments, record types, grants) and\n"
            "the exchange log. Policy changes reach a running onced at its\n"
            "next request; no restart.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %s\n      %s\n", commands[i].synopsis,
                commands[i].summary);
    fprintf(out,
            "\n"
            "Options:\n"
            "  --home HOME   the broker home (default: $ONCE_HOME, else "
            CONFIG_DEFAULT_HOME ")\n"
            "  -h, --help    this help; 'oncectl COMMAND --help' for one "
            "command\n"
            "\n"
            "Exit status: 0 on success, 1 when the operation failed, 2 on a "
            "usage error.\n");
}

/* The commands of a group, for `oncectl dept` and `oncectl dept --help`. */
static void print_group(FILE *out, const char *group)
{
    size_t i;

    fprintf(out, "usage:\n");
    for (i = 0; i < COMMAND_COUNT; i++)
        if (commands[i].group != NULL && strcmp(commands[i].group, group) == 0)
            fprintf(out, "  oncectl [--home HOME] %s\n      %s\n",
                    commands[i].synopsis, commands[i].summary);
    fprintf(out, "Try 'oncectl %s COMMAND --help' for more.\n", group);
}

static bool is_group(const char *word)
{
    size_t i;

    for (i = 0; i < COMMAND_COUNT; i++)
        if (commands[i].group != NULL && strcmp(commands[i].group, word) == 0)
            return true;
    return false;
}

/* A list cut short by a full disk or a closed pipe is a failure, not a
 * success with less output. */
static int finish(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        say_error("cannot write the output: %s", strerror(errno));
        return EXIT_FAILED;
    }
    return status;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "home", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *word, *sub;
    size_t i;
    int c;

    if (once_init() < 0) {
        say_error("cannot initialise libsodium");
        return EXIT_FAILED;
    }
    opterr = 0;
    /* '+': global options end at the command word; the command's own
     * options may then come in any order. */
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            if (optarg[0] == '\0') {
                say_error("--home needs a directory");
                return EXIT_USAGE;
            }
            oncectl_home = optarg;
            oncectl_home_given = true;
            break;
        case 'h':
            print_usage(stdout);
            return EXIT_SUCCESS;
        case ':':
            say_error("option '%s' needs a value", argv[optind - 1]);
            fprintf(stderr, "Try 'oncectl --help'.\n");
            return EXIT_USAGE;
        default:
            if (optopt != 0)
                say_error("unknown option '-%c'", optopt);
            else
                say_error("unknown option '%s'", argv[optind - 1]);
            fprintf(stderr, "Try 'oncectl --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (oncectl_home == NULL) {
        oncectl_home = getenv("ONCE_HOME");
        if (oncectl_home == NULL || oncectl_home[0] == '\0')
            oncectl_home = CONFIG_DEFAULT_HOME;
    }
    if (optind >= argc) {
        say_error("no command given");
        print_usage(stderr);
        return EXIT_USAGE;
    }
    argc -= optind;
    argv += optind;
    word = argv[0];
    if (strcmp(word, "help") == 0) {
        print_usage(stdout);
        return EXIT_SUCCESS;
    }

    sub = NULL;
    if (is_group(word)) {
        if (argc < 2) {
            say_error("'%s' needs a command", word);
            print_group(stderr, word);
            return EXIT_USAGE;
        }
        if (is_help(argv[1])) {
            print_group(stdout, word);
            return EXIT_SUCCESS;
        }
        sub = argv[1];
        argc--;
        argv++;
    }
    for (i = 0; i < COMMAND_COUNT; i++) {
        const command *cmd = &commands[i];

        if (sub != NULL ? cmd->group != NULL && strcmp(cmd->group, word) == 0 &&
                              strcmp(cmd->name, sub) == 0
                        : cmd->group == NULL && strcmp(cmd->name, word) == 0)
            return finish(cmd->run(cmd, argc, argv));
    }
    if (sub != NULL) {
        say_error("unknown command '%s %s'", word, sub);
        print_group(stderr, word);
    } else {
        say_error("unknown command '%s'", word);
        fprintf(stderr, "Try 'oncectl --help'.\n");
    }
    return EXIT_USAGE;
}
