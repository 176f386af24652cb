/*
 * notice_metrics.c - the notices' counters (docs/PROTOCOL.md 4.9) and
 * their Prometheus exposition, beside metrics.c and on its rules: no
 * lock, every counter a C11 atomic bumped with relaxed ordering by the
 * thread that sees the event and read, relaxed, by the console thread.
 *
 * The writer counts the events it stored and the acknowledgements it
 * committed, after the commit and from the group (notices_committed), and
 * the events its pruning deleted. The notices delivered are counted per
 * department by the thread that delivered them: the fan-out for pushes, a
 * worker for pulls. Several threads may meet a department first, so its
 * row is claimed with one atomic add and published by a release store of
 * its `ready` flag once its name is written, never under a lock; two
 * threads claiming a row for the same new department each get one, and
 * the exposition adds such rows up under the one name. Department names
 * are catalogue names, escaped as label values all the same. Past
 * DEPT_SLOTS departments the rest share one "(other)" row.
 *
 * The events stored (after pruning) and the subscriptions by scope are
 * read from the database at scrape time, in the console's read
 * transaction, like the records and the log's size.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "counter.h"
#include "kpi.h"
#include "metrics.h"
#include "subscriptions.h"


#define DEPT_SLOTS 1024
#define OTHER_DEPT "(other)"

typedef struct dept_notices {
    char name[ONCE_MAX_NAME + 1];
    _Atomic bool ready;    /* name written: the row may be read */
    counter pushed, pulled;
} dept_notices;

static struct {
    alignas(64) counter events;
    counter acks;
    counter pruned;
    dept_notices rows[DEPT_SLOTS]; /* the last is "(other)" */
    _Atomic size_t claimed;
    const subscriptions *tables; /* set before the console runs */
} notices_m;

void metrics_notices_tables(const subscriptions *t)
{
    notices_m.tables = t;
}

void metrics_notice_events(uint64_t n)
{
    if (n != 0)
        counter_add(&notices_m.events, n);
}

void metrics_notice_acks(uint64_t n)
{
    if (n != 0)
        counter_add(&notices_m.acks, n);
}

void metrics_notice_events_pruned(uint64_t n)
{
    if (n != 0)
        counter_add(&notices_m.pruned, n);
}

/* dept's row: a ready one of that name, else a new one claimed. */
static dept_notices *dept_row(const char *dept)
{
    size_t n = atomic_load_explicit(&notices_m.claimed, memory_order_relaxed);
    size_t i;
    dept_notices *row;

    if (n > DEPT_SLOTS)
        n = DEPT_SLOTS;
    for (i = 0; i < n; i++) {
        row = &notices_m.rows[i];
        if (atomic_load_explicit(&row->ready, memory_order_acquire) &&
            strcmp(row->name, dept) == 0)
            return row;
    }
    i = atomic_fetch_add_explicit(&notices_m.claimed, 1,
                                  memory_order_relaxed);
    if (i > DEPT_SLOTS - 1)
        return &notices_m.rows[DEPT_SLOTS - 1];
    row = &notices_m.rows[i];
    snprintf(row->name, sizeof(row->name), "%s",
             i == DEPT_SLOTS - 1 ? OTHER_DEPT : dept);
    atomic_store_explicit(&row->ready, true, memory_order_release);
    return row;
}

void metrics_notices_delivered(const char *dept, bool pushed, uint64_t n)
{
    dept_notices *row;

    if (n == 0)
        return;
    row = dept_row(dept);
    counter_add(pushed ? &row->pushed : &row->pulled, n);
}

void metrics_write_notices(FILE *out)
{
    size_t n = atomic_load_explicit(&notices_m.claimed, memory_order_relaxed);
    size_t i, j;
    int via;

    if (n > DEPT_SLOTS)
        n = DEPT_SLOTS;
    fprintf(out,
            "# HELP once_notice_events_total Notice events stored since "
            "start (one per granted publish or revoke).\n"
            "# TYPE once_notice_events_total counter\n"
            "once_notice_events_total %llu\n"
            "# HELP once_notice_acks_total Notice acknowledgements stored "
            "since start (registrations for pushes included).\n"
            "# TYPE once_notice_acks_total counter\n"
            "once_notice_acks_total %llu\n"
            "# HELP once_notice_events_pruned_total Notice events deleted "
            "since start, once every subscribing department acknowledged "
            "them.\n"
            "# TYPE once_notice_events_pruned_total counter\n"
            "once_notice_events_pruned_total %llu\n"
            "# HELP once_notices_delivered_total Notices delivered since "
            "start, by department and way (push or pull).\n"
            "# TYPE once_notices_delivered_total counter\n",
            (unsigned long long)counter_get(&notices_m.events),
            (unsigned long long)counter_get(&notices_m.acks),
            (unsigned long long)counter_get(&notices_m.pruned));
    for (i = 0; i < n; i++) {
        dept_notices *row = &notices_m.rows[i];
        uint64_t sum[2];
        bool first = true;

        if (!atomic_load_explicit(&row->ready, memory_order_acquire))
            continue;
        for (j = 0; j < i && first; j++)
            first = !(atomic_load_explicit(&notices_m.rows[j].ready,
                                           memory_order_acquire) &&
                      strcmp(notices_m.rows[j].name, row->name) == 0);
        if (!first)
            continue; /* added up under the first row of its name */
        sum[0] = counter_get(&row->pushed);
        sum[1] = counter_get(&row->pulled);
        for (j = i + 1; j < n; j++)
            if (atomic_load_explicit(&notices_m.rows[j].ready,
                                     memory_order_acquire) &&
                strcmp(notices_m.rows[j].name, row->name) == 0) {
                sum[0] += counter_get(&notices_m.rows[j].pushed);
                sum[1] += counter_get(&notices_m.rows[j].pulled);
            }
        for (via = 0; via < 2; via++) {
            fputs("once_notices_delivered_total{department=\"", out);
            kpi_write_label(out, row->name);
            fprintf(out, "\",via=\"%s\"} %llu\n", via == 0 ? "push" : "pull",
                    (unsigned long long)sum[via]);
        }
    }
}

int metrics_write_notice_store(FILE *out, MDB_txn *txn, once_error *err)
{
    uint64_t scopes[4];
    size_t stored;
    int rc;

    if (notices_m.tables == NULL)
        return 0;
    if ((rc = subscriptions_events_stored(txn, notices_m.tables, &stored,
                                          err)) < 0 ||
        (rc = subscriptions_count_by_scope(txn, notices_m.tables, scopes,
                                           err)) < 0)
        return rc;
    fprintf(out,
            "# HELP once_notice_events_stored Notice events kept for "
            "subscribers (after pruning).\n"
            "# TYPE once_notice_events_stored gauge\n"
            "once_notice_events_stored %zu\n"
            "# HELP once_subscriptions Subscriptions of all departments, "
            "by scope.\n"
            "# TYPE once_subscriptions gauge\n"
            "once_subscriptions{scope=\"type\"} %llu\n"
            "once_subscriptions{scope=\"subject\"} %llu\n"
            "once_subscriptions{scope=\"held\"} %llu\n",
            stored, (unsigned long long)scopes[1],
            (unsigned long long)scopes[2], (unsigned long long)scopes[3]);
    return 0;
}
