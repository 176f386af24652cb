/*
 * subscriptions.c - `oncectl subscriptions`: what departments subscribed
 * to (docs/PROTOCOL.md 4.9), for operators.
 *
 * Departments make and cancel their subscriptions themselves, through
 * signed envelopes that are leaves of the exchange log; the operator only
 * looks. Each line is one subscription: the department, its scope, the
 * type, the leaf of the subscribe that made it and the department's
 * acknowledgement cursor (the leaf up to which it has handled its
 * notices, so a department whose cursor lags far behind the log is not
 * reading). A one-subject subscription shows "(one subject)": the
 * subject is personal data, which the listing does not print; the leaf
 * carries its keyed hash, which `once-audit subject` finds with the audit
 * key.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "home.h"
#include "subscriptions.h"

typedef struct sub_widths {
    int dept, type;
    const subscriptions *t;
    MDB_txn *txn;
} sub_widths;

static const char *scope_word(int scope)
{
    switch (scope) {
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_TYPE: return "type";
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_SUBJECT: return "subject";
    case ONCE__SUBSCRIPTION_SCOPE__SCOPE_HELD: return "held";
    default: return "?";
    }
}

static int sub_measure(const char *dept, const Once__Subscription *s,
                       void *arg)
{
    sub_widths *w = arg;

    widen(&w->dept, dept);
    widen(&w->type, s->type[0] != '\0' ? s->type : "(every type)");
    return 0;
}

static int sub_print(const char *dept, const Once__Subscription *s,
                     void *arg)
{
    const sub_widths *w = arg;
    uint64_t acked = 0;
    once_error err;

    if (subscriptions_cursor_get(w->txn, w->t, dept, &acked, &err) < 0)
        acked = 0;
    printf("%-*s  %-7s  %-*s  %-13s  %10llu  %10llu\n", w->dept, dept,
           scope_word(s->scope), w->type,
           s->type[0] != '\0' ? s->type : "(every type)",
           s->subject[0] != '\0' ? "(one subject)" : "-",
           (unsigned long long)s->leaf_index, (unsigned long long)acked);
    return 0;
}

static int subscriptions_txn(MDB_txn *txn, const store *s, void *arg,
                             once_error *err)
{
    subscriptions t;
    sub_widths w = { (int)strlen("DEPARTMENT"), (int)strlen("TYPE"), &t,
                     txn };
    int rc;

    (void)arg;
    /* A broker that never ran this version has no such tables yet. */
    if (mdb_dbi_open(txn, "subscriptions", 0, &t.subs) != MDB_SUCCESS ||
        mdb_dbi_open(txn, "notice_cursors", 0, &t.cursors) != MDB_SUCCESS) {
        printf("no subscriptions\n");
        return 0;
    }
    (void)s;
    rc = subscriptions_list(txn, &t, NULL, sub_measure, &w, err);
    if (rc != 0)
        return rc;
    printf("%-*s  %-7s  %-*s  %-13s  %10s  %10s\n", w.dept, "DEPARTMENT",
           "SCOPE", w.type, "TYPE", "SUBJECT", "LEAF", "ACKED");
    return subscriptions_list(txn, &t, NULL, sub_print, &w, err);
}

int cmd_subscriptions(const command *cmd, int argc, char **argv)
{
    return run_list(cmd, argc, argv, subscriptions_txn);
}
