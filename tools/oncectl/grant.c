/*
 * grant.c - `oncectl grant`: who may read which fields of which type, for
 * which purpose.
 *
 * A grant is (requester, type, purpose, fields); everything not granted is
 * refused (NO_GRANT), and a request must name the purpose exactly as it
 * was granted, which is the legal basis the log records with every
 * exchange. A grant's fields are changed by revoking it and adding it
 * again, so that each change is one line an auditor can see.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "home.h"

/* The options of grant add and grant revoke; revoke takes no --fields. */
static int parse_grant(const command *cmd, int argc, char **argv, grant *g,
                       bool with_fields)
{
    static const struct option longopts[] = {
        { "requester", required_argument, NULL, 'r' },
        { "type", required_argument, NULL, 't' },
        { "purpose", required_argument, NULL, 'p' },
        { "fields", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *requester = NULL, *type = NULL, *purpose = NULL;
    bool have_fields = false;
    int c, rc;

    memset(g, 0, sizeof(*g));
    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return OPT_HELP;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'r':
            requester = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'p':
            purpose = optarg;
            break;
        case 'f':
            if (!with_fields)
                return usage_error(cmd, "--fields is not an option of "
                                   "this command");
            rc = split_names(cmd, "--fields", optarg, g->fields,
                             &g->field_count, ONCE_MAX_FIELDS);
            if (rc != 0)
                return rc;
            have_fields = true;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 0, 0, "")) != 0)
        return rc;
    if (requester == NULL)
        return usage_error(cmd, "missing --requester, the department id");
    if ((rc = check_name(cmd, "--requester", requester)) != 0)
        return rc;
    if (type == NULL)
        return usage_error(cmd, "missing --type, the record type");
    if ((rc = check_name(cmd, "--type", type)) != 0)
        return rc;
    if (purpose == NULL || purpose[0] == '\0')
        return usage_error(cmd, "missing --purpose, the legal basis "
                           "requests must name");
    if (strlen(purpose) > ONCE_MAX_PURPOSE)
        return usage_error(cmd, "--purpose is longer than %d bytes",
                           ONCE_MAX_PURPOSE);
    if (with_fields && !have_fields)
        return usage_error(cmd, "missing --fields, the fields the requester "
                           "may read");
    strcpy(g->requester, requester);
    strcpy(g->type, type);
    strcpy(g->purpose, purpose);
    return 0;
}

static int grant_add_txn(MDB_txn *txn, const store *s, void *arg,
                         once_error *err)
{
    return policy_grant_add(txn, s, arg, err);
}

static int grant_revoke_txn(MDB_txn *txn, const store *s, void *arg,
                            once_error *err)
{
    const grant *g = arg;

    return policy_grant_revoke(txn, s, g->requester, g->type, g->purpose,
                               err);
}

/* grant add (with --fields) and grant revoke (without). */
static int grant_change(const command *cmd, int argc, char **argv, bool add)
{
    grant g;
    int rc;

    rc = parse_grant(cmd, argc, argv, &g, add);
    if (rc != 0)
        return rc == OPT_HELP ? EXIT_SUCCESS : rc;
    rc = with_database(0, add ? grant_add_txn : grant_revoke_txn, &g);
    if (rc != EXIT_SUCCESS)
        return rc;
    if (add)
        printf("granted %s %zu field(s) of %s for purpose \"%s\"\n",
               g.requester, g.field_count, g.type, g.purpose);
    else
        printf("revoked the grant of %s on %s for purpose \"%s\"\n",
               g.requester, g.type, g.purpose);
    return rc;
}

int cmd_grant_add(const command *cmd, int argc, char **argv)
{
    return grant_change(cmd, argc, argv, true);
}

int cmd_grant_revoke(const command *cmd, int argc, char **argv)
{
    return grant_change(cmd, argc, argv, false);
}

typedef struct grant_widths {
    int requester, type, fields;
} grant_widths;

static int grant_measure(const grant *g, void *arg)
{
    grant_widths *w = arg;
    char fields[FIELD_LIST_MAX];

    widen(&w->requester, g->requester);
    widen(&w->type, g->type);
    widen(&w->fields, join_names(fields, sizeof(fields), g->fields,
                                 g->field_count));
    return 0;
}

/* The purpose is free text (often not ASCII), so it comes last, where its
 * width cannot misalign the columns. */
static int grant_print(const grant *g, void *arg)
{
    const grant_widths *w = arg;
    char fields[FIELD_LIST_MAX];

    printf("%-*s  %-*s  %-*s  %s\n", w->requester, g->requester, w->type,
           g->type, w->fields,
           join_names(fields, sizeof(fields), g->fields, g->field_count),
           g->purpose);
    return 0;
}

static int grant_list_txn(MDB_txn *txn, const store *s, void *arg,
                          once_error *err)
{
    grant_widths w = { (int)strlen("REQUESTER"), (int)strlen("TYPE"),
                       (int)strlen("FIELDS") };
    int rc;

    (void)arg;
    rc = policy_grant_list(txn, s, grant_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-*s  %-*s  %s\n", w.requester, "REQUESTER", w.type, "TYPE",
           w.fields, "FIELDS", "PURPOSE");
    return policy_grant_list(txn, s, grant_print, &w, err);
}

int cmd_grant_list(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, grant_list_txn);
}
