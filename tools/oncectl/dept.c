/*
 * dept.c - `oncectl dept`: the departments that may connect.
 *
 * A department is an id, a human-readable name, its Ed25519 public key
 * (from which its CurveZMQ key is derived, so one key file per
 * department) and a status. add registers one; suspend makes the broker
 * refuse its connections and messages from its next request on, without
 * touching what it published; resume undoes that. policy.c decides what
 * is valid (an id or a key registered twice is refused); this file checks
 * the command line and prints the outcome.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "home.h"

typedef struct dept_add_args {
    const char *id;
    const char *name;
    uint8_t public_key[ONCE_PUBLIC_KEY_BYTES];
} dept_add_args;

static int dept_add_txn(MDB_txn *txn, const store *s, void *arg,
                        once_error *err)
{
    dept_add_args *a = arg;

    return policy_department_add(txn, s, a->id, a->name, a->public_key, err);
}

int cmd_dept_add(const command *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "key", required_argument, NULL, 'k' },
        { "name", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char hex[2 * KEY_PREFIX_BYTES + 1];
    const char *key_file = NULL;
    dept_add_args a = { NULL, NULL, { 0 } };
    once_error err;
    int c, rc;

    optind = 0;
    while ((c = next_option(cmd, argc, argv, longopts)) != OPT_END) {
        switch (c) {
        case OPT_HELP:
            return EXIT_SUCCESS;
        case OPT_BAD:
            return EXIT_USAGE;
        case 'k':
            key_file = optarg;
            break;
        case 'n':
            a.name = optarg;
            break;
        }
    }
    if ((rc = expect_args(cmd, argc, argv, 1, 1, "ID, the department id")))
        return rc;
    a.id = argv[optind];
    if ((rc = check_name(cmd, "department id", a.id)) != 0)
        return rc;
    if (key_file == NULL)
        return usage_error(cmd, "missing --key PUBFILE, the department's "
                           "public key file (from 'oncectl keygen')");
    if (once_public_key_load(a.public_key, key_file, &err) < 0) {
        say_error("%s", err.message);
        return EXIT_FAILED;
    }
    rc = with_database(0, dept_add_txn, &a);
    if (rc == EXIT_SUCCESS) {
        once_hex_encode(hex, a.public_key, KEY_PREFIX_BYTES);
        printf("added department %s (key %s)\n", a.id, hex);
    }
    return rc;
}

typedef struct dept_widths {
    int id;
} dept_widths;

static int dept_measure(const department *d, void *arg)
{
    dept_widths *w = arg;

    widen(&w->id, d->id);
    return 0;
}

static const char *status_name(department_status status)
{
    return status == DEPARTMENT_ACTIVE ? "active" : "suspended";
}

static int dept_print(const department *d, void *arg)
{
    const dept_widths *w = arg;
    char hex[2 * KEY_PREFIX_BYTES + 1];

    once_hex_encode(hex, d->public_key, KEY_PREFIX_BYTES);
    printf("%-*s  %-9s  %-16s  %s\n", w->id, d->id, status_name(d->status),
           hex, d->name);
    return 0;
}

static int dept_list_txn(MDB_txn *txn, const store *s, void *arg,
                         once_error *err)
{
    dept_widths w = { (int)strlen("ID") };
    int rc;

    (void)arg;
    rc = policy_department_list(txn, s, dept_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-9s  %-16s  %s\n", w.id, "ID", "STATUS", "KEY", "NAME");
    return policy_department_list(txn, s, dept_print, &w, err);
}

int cmd_dept_list(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, dept_list_txn);
}

typedef struct dept_status_args {
    const char *id;
    department_status status;
    bool unchanged;
} dept_status_args;

static int dept_status_txn(MDB_txn *txn, const store *s, void *arg,
                           once_error *err)
{
    dept_status_args *a = arg;
    department d;
    int rc;

    rc = policy_department_get(txn, s, a->id, &d, err);
    if (rc < 0)
        return rc;
    a->unchanged = d.status == a->status;
    if (a->unchanged)
        return 0;
    return policy_department_set_status(txn, s, a->id, a->status, err);
}

static int dept_set_status(const command *cmd, int argc, char **argv,
                           department_status status)
{
    dept_status_args a = { NULL, status, false };
    int rc;

    if ((rc = arguments_only(cmd, argc, argv, 1, 1,
                             "ID, the department id")) != OPT_END)
        return rc;
    a.id = argv[optind];
    if ((rc = check_name(cmd, "department id", a.id)) != 0)
        return rc;
    rc = with_database(0, dept_status_txn, &a);
    if (rc != EXIT_SUCCESS)
        return rc;
    if (a.unchanged)
        printf("department %s is already %s\n", a.id, status_name(status));
    else
        printf("department %s is now %s\n", a.id, status_name(status));
    return EXIT_SUCCESS;
}

int cmd_dept_suspend(const command *cmd, int argc, char **argv)
{
    return dept_set_status(cmd, argc, argv, DEPARTMENT_SUSPENDED);
}

int cmd_dept_resume(const command *cmd, int argc, char **argv)
{
    return dept_set_status(cmd, argc, argv, DEPARTMENT_ACTIVE);
}
