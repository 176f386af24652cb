/*
 * type.c - `oncectl type`: the catalogue of record types.
 *
 * A record type names its issuing departments (only they may publish or
 * revoke records of it), its subjects' kind (enterprises, by Unified
 * Social Credit Code, or persons, by resident identity number) and the
 * fields its records carry. Grants refer to types and fields by name, so
 * the names follow the one name rule (cli.c's check_name).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "home.h"

static int type_add_txn(MDB_txn *txn, const store *s, void *arg,
                        once_error *err)
{
    return policy_type_add(txn, s, arg, err);
}

int cmd_type_add(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "issuer", required_argument, NULL, 'i' },
        { "subject", required_argument, NULL, 's' },
        { "fields", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    record_type t;
    const char *subject = NULL;
    bool have_fields = false;
    int c, rc;

    memset(&t, 0, sizeof(t));
    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return EXIT_SUCCESS;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'i':
            rc = split_names(cmd, "--issuer", optarg, t.issuers,
                             &t.issuer_count, POLICY_MAX_ISSUERS);
            if (rc != 0)
                return rc;
            break;
        case 's':
            subject = optarg;
            break;
        case 'f':
            rc = split_names(cmd, "--fields", optarg, t.fields,
                             &t.field_count, ONCE_MAX_FIELDS);
            if (rc != 0)
                return rc;
            have_fields = true;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "NAME, the record type")))
        return rc;
    if ((rc = check_name(cmd, "record type name", argv[optind])) != 0)
        return rc;
    strcpy(t.name, argv[optind]);
    if (t.issuer_count == 0)
        return usage_error(cmd, "missing --issuer, the department(s) that "
                           "may publish this type");
    if (subject == NULL)
        return usage_error(cmd, "missing --subject enterprise|person");
    if (once_subject_kind_parse(subject, &t.subject_kind) < 0)
        return usage_error(cmd, "invalid --subject '%s': use enterprise "
                           "(Unified Social Credit Code) or person "
                           "(resident identity number)", subject);
    if (!have_fields)
        return usage_error(cmd, "missing --fields, the record's field names");
    rc = with_database(0, type_add_txn, &t);
    if (rc == EXIT_SUCCESS)
        printf("added record type %s (%zu fields)\n", t.name, t.field_count);
    return rc;
}

typedef struct type_widths {
    int name, issuers;
} type_widths;

static int type_measure(const record_type *t, void *arg)
{
    type_widths *w = arg;
    char issuers[ISSUER_LIST_MAX];

    widen(&w->name, t->name);
    widen(&w->issuers, join_names(issuers, sizeof(issuers), t->issuers,
                                  t->issuer_count));
    return 0;
}

static int type_print(const record_type *t, void *arg)
{
    const type_widths *w = arg;
    char issuers[ISSUER_LIST_MAX], fields[FIELD_LIST_MAX];

    printf("%-*s  %-10s  %-*s  %s\n", w->name, t->name,
           once_subject_kind_name(t->subject_kind), w->issuers,
           join_names(issuers, sizeof(issuers), t->issuers, t->issuer_count),
           join_names(fields, sizeof(fields), t->fields, t->field_count));
    return 0;
}

static int type_list_txn(MDB_txn *txn, const store *s, void *arg,
                         once_error *err)
{
    type_widths w = { (int)strlen("NAME"), (int)strlen("ISSUERS") };
    int rc;

    (void)arg;
    rc = policy_type_list(txn, s, type_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-10s  %-*s  %s\n", w.name, "NAME", "SUBJECT", w.issuers,
           "ISSUERS", "FIELDS");
    return policy_type_list(txn, s, type_print, &w, err);
}

int cmd_type_list(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, type_list_txn);
}
