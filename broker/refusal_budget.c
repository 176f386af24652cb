/*
 * refusal_budget.c - how many refusals of each department the exchange
 * log takes: a token bucket per department.
 *
 * Why. Every publish, revoke and request, granted or refused, is a leaf
 * of the append-only log, and a refusal keeps at most about 2 KB there
 * (its evidence is a 65-byte marker above 1 KiB, docs/AUDIT.md). But a
 * department can be refused as often as it sends: a stream of requests it
 * has no grant for, of envelopes with bad signatures or stale clocks,
 * each signed and each a leaf kept forever, grows the log without bound
 * and eats the room the others' requests need (DESIGN.md, "Sharing
 * fairly"). So each department has a budget of logged refusals: a bucket
 * of `max_logged_refusals_per_department` (the burst), refilled evenly at
 * that many per `logged_refusals_window_seconds`. Within it a refusal is
 * logged as always; over it the worker answers QUOTA_EXCEEDED, naming the
 * limit and the refusal it stands for, logs nothing, keeps nothing as the
 * envelope's answer (the same bytes may come again) and counts it here.
 *
 * Why that is right for an audited exchange. The log must show every
 * exchange that did something or disclosed something. A refusal over the
 * budget did neither: it is answered before anything is stored, with a
 * code that says only that the department was refused for its own doing
 * (no grant, a bad signature, a malformed record...), which reveals
 * nothing about any record or citizen. Like the refusals already left
 * out of the log (framing, pings, QUOTA_EXCEEDED for memory), what is
 * lost to the auditor is only the number of such attempts, and that is
 * in onced's log (a line per department at most every 10 s, with the
 * count since the last line and since the start).
 *
 * What never counts, and is always logged:
 *   - granted exchanges: this module is asked about refusals only;
 *   - NOT_FOUND and STALE_VERSION: they are read from the stored records
 *     and given only to a department that passed the grant (requests) or
 *     issuer (revocations, publishes) checks. They are answers of an
 *     exchange the department was entitled to make: "this enterprise has
 *     no licence" is a disclosure about a subject, which the log must
 *     show as a grant is shown. Over a budget they could not be answered
 *     QUOTA_EXCEEDED either, since a department that got QUOTA_EXCEEDED
 *     where a grant would have served would learn the record is missing,
 *     unlogged. Such a department adds leaves at the pace of its entitled
 *     exchanges, as its grants do.
 *   - the broker's own failures (INTERNAL, STORAGE_FULL, UNAVAILABLE):
 *     not the department's doing, and QUOTA_EXCEEDED would misstate them.
 *   - refusals that are not logged anyway (server.c decides which are):
 *     they are never asked about.
 *
 * The algorithm is GCRA (the generic cell rate algorithm, ITU-T I.371),
 * a token bucket kept as one number per department: the theoretical
 * arrival time (TAT) of the next refusal when the bucket refills at one
 * unit per interval T = window / burst. A refusal at time now is within
 * the budget when TAT - now <= (burst - 1) * T, and then moves TAT to
 * max(TAT, now) + T. One 64-bit word, updated with compare-and-swap, so
 * workers charging one department at once can never both take the last
 * unit, and no lock is held. Times are microseconds of the monotonic
 * clock, so T is at least one with the largest burst.
 *
 * Departments. The key is the department of the connection (its ZAP
 * User-Id), the one that sent the bytes, whatever the envelope claims:
 * only registered departments get connections, so the table holds at
 * most as many entries as were ever registered in this run, each kept
 * until the broker stops. Lookups walk a list without locks (entries are
 * published with release stores and never freed before refusal_budget_
 * free); only adding a department takes the mutex. The budget is in
 * memory: a restart of onced fills every bucket.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "refusal_budget.h"

#define BUCKETS 64
#define MAX_BURST 1000000u
#define MAX_WINDOW_SECONDS 86400u
/* At most one line about a department's unlogged refusals this often. */
#define LINE_INTERVAL_MS 10000

typedef struct budget_entry {
    struct budget_entry *next; /* set before the entry is published */
    _Atomic uint64_t tat_us;   /* GCRA's theoretical arrival time */
    _Atomic uint64_t unlogged; /* over the budget, since the start */
    _Atomic uint64_t since_line; /* over the budget, since the last line */
    _Atomic uint64_t line_ms;  /* time of the last line + 1; 0: none */
    char department[ONCE_MAX_NAME + 1];
} budget_entry;

struct refusal_budget {
    _Atomic(budget_entry *) heads[BUCKETS];
    pthread_mutex_t add_lock;
    uint64_t interval_us; /* T */
    uint64_t tolerance_us; /* (burst - 1) * T */
    unsigned burst;
    unsigned window_seconds;
};

int refusal_budget_create(refusal_budget **out, unsigned burst,
                          unsigned window_seconds, once_error *err)
{
    refusal_budget *b;
    size_t i;

    *out = NULL;
    if (burst < 1 || burst > MAX_BURST || window_seconds < 1 ||
        window_seconds > MAX_WINDOW_SECONDS)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a refusal budget needs 1 to %u refusals "
                              "per 1 to %u s", MAX_BURST,
                              MAX_WINDOW_SECONDS);
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY,
                              "out of memory for the refusal budgets");
    for (i = 0; i < BUCKETS; i++)
        atomic_init(&b->heads[i], NULL);
    pthread_mutex_init(&b->add_lock, NULL);
    b->burst = burst;
    b->window_seconds = window_seconds;
    b->interval_us = (uint64_t)window_seconds * 1000000u / burst;
    b->tolerance_us = (uint64_t)(burst - 1) * b->interval_us;
    *out = b;
    return 0;
}

void refusal_budget_free(refusal_budget *b)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < BUCKETS; i++) {
        budget_entry *e = atomic_load(&b->heads[i]), *next;

        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&b->add_lock);
    free(b);
}

bool refusal_budget_counts(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case ONCE_ERR_NOT_FOUND:
    case ONCE_ERR_STALE_VERSION:
    case ONCE_ERR_INTERNAL:
    case ONCE_ERR_STORAGE_FULL:
    case ONCE_ERR_UNAVAILABLE:
        return false;
    default:
        /* libonce's local codes go out as INTERNAL. */
        return code < ONCE_ERR_INVALID_ARGUMENT;
    }
}

/* FNV-1a: department ids are the operator's, not a sender's choice. */
static size_t bucket_of(const char *department)
{
    uint32_t h = 2166136261u;

    for (; *department != '\0'; department++)
        h = (h ^ (uint8_t)*department) * 16777619u;
    return h % BUCKETS;
}

static budget_entry *find(budget_entry *e, const char *department)
{
    for (; e != NULL; e = e->next)
        if (strcmp(e->department, department) == 0)
            return e;
    return NULL;
}

/* The department's entry, made on first use; NULL when out of memory. */
static budget_entry *entry_of(refusal_budget *b, const char *department,
                              bool create)
{
    _Atomic(budget_entry *) *head = &b->heads[bucket_of(department)];
    budget_entry *e = find(atomic_load_explicit(head, memory_order_acquire),
                           department);

    if (e != NULL || !create)
        return e;
    pthread_mutex_lock(&b->add_lock);
    /* Another worker may have added it since. */
    e = find(atomic_load_explicit(head, memory_order_acquire), department);
    if (e == NULL && (e = calloc(1, sizeof(*e))) != NULL) {
        snprintf(e->department, sizeof(e->department), "%s", department);
        e->next = atomic_load_explicit(head, memory_order_relaxed);
        atomic_store_explicit(head, e, memory_order_release);
    }
    pthread_mutex_unlock(&b->add_lock);
    return e;
}

/* Counts a refusal over the budget and, at most every LINE_INTERVAL_MS
 * per department, says so in onced's log. */
static void count_unlogged(refusal_budget *b, budget_entry *e, int code,
                           uint64_t now_ms)
{
    uint64_t last = atomic_load(&e->line_ms), total, since;

    total = atomic_fetch_add(&e->unlogged, 1) + 1;
    atomic_fetch_add(&e->since_line, 1);
    if (last != 0 && now_ms + 1 - last < LINE_INTERVAL_MS)
        return;
    if (!atomic_compare_exchange_strong(&e->line_ms, &last, now_ms + 1))
        return; /* another worker writes the line */
    since = atomic_exchange(&e->since_line, 0);
    diag_info("refusals", "department %s is over its budget of logged "
             "refusals (max_logged_refusals_per_department = %u per "
             "logged_refusals_window_seconds = %u): %llu refusal%s "
             "answered QUOTA_EXCEEDED and not logged since the last such "
             "line, %llu since onced started (the latest would have been "
             "%s)", e->department, b->burst, b->window_seconds,
             (unsigned long long)since, since == 1 ? "" : "s",
             (unsigned long long)total, once_error_name(code));
}

bool refusal_budget_take(refusal_budget *b, const char *department, int code,
                         uint64_t now_ms, uint64_t *wait_ms)
{
    uint64_t now_us = now_ms * 1000u, tat, base, next;
    budget_entry *e;

    *wait_ms = 0;
    if (!refusal_budget_counts(code))
        return true;
    /* Without memory for an entry there is no bucket to charge: the
     * refusal is logged, as before budgets existed. */
    if ((e = entry_of(b, department, true)) == NULL)
        return true;
    tat = atomic_load(&e->tat_us);
    do {
        base = tat > now_us ? tat : now_us;
        if (base - now_us > b->tolerance_us) {
            uint64_t wait_us = base - now_us - b->tolerance_us;

            *wait_ms = (wait_us + 999u) / 1000u;
            count_unlogged(b, e, code, now_ms);
            return false;
        }
        next = base + b->interval_us;
    } while (!atomic_compare_exchange_weak(&e->tat_us, &tat, next));
    return true;
}

uint64_t refusal_budget_unlogged(refusal_budget *b, const char *department)
{
    budget_entry *e = entry_of(b, department, false);

    return e != NULL ? atomic_load(&e->unlogged) : 0;
}

unsigned refusal_budget_burst(const refusal_budget *b)
{
    return b->burst;
}

unsigned refusal_budget_window_seconds(const refusal_budget *b)
{
    return b->window_seconds;
}
