/*
 * kpi.c - what the exchange achieves, computed from its log.
 *
 * once exists so that an applicant no longer carries photocopies from one
 * department to the next: every granted request is a copy avoided. These
 * numbers (copies avoided in total, per type, per requesting department
 * and per day; the sharing rate, granted over all requests; refusals by
 * code, where a rising NO_GRANT means a grant is missing; publish
 * freshness, a record's issued_at to its publish; participation) are
 * facts about the exchange log, so they are computed from it.
 *
 * Why from the log and incrementally, rather than from counters on the data
 * path or by re-reading the whole table on every scrape:
 *
 *   - The log is the truth and outlives the process. Counters kept by the
 *     writer start from zero at every restart; a KPI such as "copies
 *     avoided since the exchange opened" must not. Reading the log gives
 *     the same numbers an auditor gets from an export.
 *   - It costs the data path nothing: the console thread reads committed
 *     leaves in its own LMDB read transaction, which never blocks the
 *     writer or the workers, and no hook on the data path has to carry
 *     department or type names across threads.
 *   - The log only grows, and leaves never change, so a cursor (the next
 *     leaf index) is all the state needed to be exact: each call reads
 *     only the leaves committed since the last one, a bounded number per
 *     call so that a first start on a log of millions of leaves spreads the
 *     catching up over a few scrapes instead of stalling one. The cost is a
 *     read and a protobuf decode per leaf, once per process lifetime (and
 *     for a granted publish, the decode of its envelope for issued_at).
 *     A restart needs nothing persisted: the first answers after a start
 *     count the whole log again, which gives the same totals.
 *
 * That per-leaf cost is nearly all the console costs a busy broker (a
 * profile of the console thread under once-bench --console:
 * docs/PERFORMANCE.md, The console's cost), so it is kept small: the new
 * leaves are read through one LMDB cursor (auditlog_leaf_each) rather
 * than a tree descent each; each leaf is decoded into an arena (arena.c)
 * reset after it, not with a malloc per string and bytes field; and a
 * department's or type's row is found through a hashed index of its
 * table, not by comparing the name with every row (a thousand
 * departments would make that a thousand strcmp per leaf).
 *
 * All of it belongs to the console thread: nothing here is shared, so
 * nothing here locks. Tables are bounded: KPI_MAX_NAMES departments and as
 * many types (more fall into one "(other)" row), the newest KPI_MAX_DAYS
 * days and the last KPI_MINUTES minutes for the throughput chart.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "kpi.h"
#include "once.pb-c.h"

#define MS_PER_MINUTE 60000u
#define MS_PER_DAY 86400000u
#define OTHER_NAME "(other)"
#define DECODE_BLOCK_BYTES 16384 /* a leaf, and most publishes' evidence */

_Static_assert((KPI_NAME_SLOTS & (KPI_NAME_SLOTS - 1)) == 0 &&
               KPI_NAME_SLOTS >= 2 * KPI_MAX_NAMES &&
               KPI_NAME_SLOTS <= UINT16_MAX, "the name index's size");

const double kpi_freshness_bounds[KPI_FRESHNESS_BUCKETS] = {
    1, 10, 60, 600, 3600, 21600, 86400, 604800, 2592000, 31536000,
};

static int table_init(kpi_table *t)
{
    t->rows = calloc(KPI_MAX_NAMES, sizeof(*t->rows));
    t->slots = calloc(KPI_NAME_SLOTS, sizeof(*t->slots));
    return t->rows != NULL && t->slots != NULL ? 0 : -1;
}

static void table_free(kpi_table *t)
{
    free(t->rows);
    free(t->slots);
}

int kpi_init(kpi *k, once_error *err)
{
    memset(k, 0, sizeof(*k));
    k->days = calloc(KPI_MAX_DAYS, sizeof(*k->days));
    k->decode_block = malloc(DECODE_BLOCK_BYTES);
    if (table_init(&k->departments) < 0 || table_init(&k->types) < 0 ||
        k->days == NULL || k->decode_block == NULL) {
        kpi_free(k);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    arena_init(&k->decode, k->decode_block, DECODE_BLOCK_BYTES);
    return 0;
}

void kpi_free(kpi *k)
{
    table_free(&k->departments);
    table_free(&k->types);
    free(k->days);
    if (k->decode_block != NULL)
        arena_reset(&k->decode);
    free(k->decode_block);
    memset(k, 0, sizeof(*k));
}

/* FNV-1a. Not keyed: a department naming types in a refused request could
 * put them all in one chain, which costs what the scan over every row did
 * before the index, and no more, since a table holds KPI_MAX_NAMES rows. */
static size_t name_hash(const char *name)
{
    uint32_t h = 2166136261u;

    for (; *name != '\0'; name++)
        h = (h ^ (uint8_t)*name) * 16777619u;
    return h;
}

/* The slot of name in t's index: the one holding it, or the free one
 * where it would go (there is always one: twice as many slots as rows). */
static uint16_t *slot_of(const kpi_table *t, const char *name)
{
    size_t i = name_hash(name) & (KPI_NAME_SLOTS - 1);

    while (t->slots[i] != 0 && strcmp(t->rows[t->slots[i] - 1].name, name))
        i = (i + 1) & (KPI_NAME_SLOTS - 1);
    return &t->slots[i];
}

const kpi_counts *kpi_find(const kpi_table *t, const char *name)
{
    uint16_t *slot = slot_of(t, name);

    return *slot != 0 ? &t->rows[*slot - 1] : NULL;
}

/* The row of name, added when new; the last row collects every name past
 * the table's size. */
static kpi_counts *row(kpi_table *t, const char *name)
{
    uint16_t *slot = slot_of(t, name);

    if (*slot != 0)
        return &t->rows[*slot - 1];
    if (t->n >= KPI_MAX_NAMES - 1) {
        if (t->n == KPI_MAX_NAMES - 1) {
            snprintf(t->rows[KPI_MAX_NAMES - 1].name,
                     sizeof(t->rows[0].name), "%s", OTHER_NAME);
            t->n = KPI_MAX_NAMES;
        }
        return &t->rows[KPI_MAX_NAMES - 1];
    }
    snprintf(t->rows[t->n].name, sizeof(t->rows[0].name), "%s", name);
    *slot = (uint16_t)(t->n + 1);
    return &t->rows[t->n++];
}

/* The day's row; leaves come in time order, nearly always today's. A
 * day older than the oldest kept is not kept. */
static kpi_day *day_row(kpi *k, uint64_t day)
{
    size_t i;

    for (i = k->n_days; i > 0; i--)
        if (k->days[i - 1].day == day)
            return &k->days[i - 1];
    if (k->n_days > 0 && day < k->days[k->n_days - 1].day) {
        /* The broker clock went back: count it in the newest day. */
        return &k->days[k->n_days - 1];
    }
    if (k->n_days == KPI_MAX_DAYS) {
        memmove(k->days, k->days + 1, (KPI_MAX_DAYS - 1) * sizeof(*k->days));
        k->n_days--;
    }
    memset(&k->days[k->n_days], 0, sizeof(k->days[0]));
    k->days[k->n_days].day = day;
    return &k->days[k->n_days++];
}

static kpi_minute *minute_row(kpi *k, uint64_t minute)
{
    kpi_minute *m = &k->minutes[minute % KPI_MINUTES];

    if (m->minute != minute) {
        memset(m, 0, sizeof(*m));
        m->minute = minute;
    }
    return m;
}

/* issued_at of the record a granted publish carried, from its evidence;
 * 0 when it cannot be read. Decoded into alloc, which the caller resets. */
static uint64_t publish_issued_at(MDB_txn *txn, const auditlog *log,
                                  uint64_t index, ProtobufCAllocator *alloc)
{
    Once__Envelope *env = NULL;
    Once__Publish *pub = NULL;
    Once__RecordHeader *h = NULL;
    once_error err;
    MDB_val ev;

    if (auditlog_evidence_get(txn, log, index, &ev, &err) < 0)
        return 0;
    env = once__envelope__unpack(alloc, ev.mv_size, ev.mv_data);
    if (env != NULL && env->kind == ONCE__KIND__KIND_PUBLISH)
        pub = once__publish__unpack(alloc, env->body.len, env->body.data);
    if (pub != NULL && pub->record != NULL)
        h = once__record_header__unpack(alloc, pub->record->header.len,
                                        pub->record->header.data);
    return h != NULL ? h->issued_at : 0;
}

static void count_freshness(kpi *k, uint64_t issued_at, uint64_t logged_at)
{
    uint64_t ms = logged_at > issued_at ? logged_at - issued_at : 0;
    size_t i = 0;

    while (i < KPI_FRESHNESS_BUCKETS &&
           (double)ms / 1000.0 > kpi_freshness_bounds[i])
        i++;
    k->freshness_buckets[i]++;
    k->freshness_sum_ms += ms;
    k->freshness_count++;
}

static void count_leaf(kpi *k, MDB_txn *txn, const auditlog *log,
                       uint64_t index, const Once__LogLeaf *l,
                       ProtobufCAllocator *alloc)
{
    bool granted = l->decision == ONCE__DECISION__DECISION_GRANTED;
    kpi_counts *dept = row(&k->departments, l->department);
    kpi_counts *type = l->record_type[0] != '\0'
                           ? row(&k->types, l->record_type)
                           : NULL;
    kpi_day *day = day_row(k, l->time / MS_PER_DAY);
    kpi_minute *minute = minute_row(k, l->time / MS_PER_MINUTE);
    uint64_t issued;

    if (k->first_leaf_ms == 0)
        k->first_leaf_ms = l->time;
    if (l->time > dept->last_seen_ms)
        dept->last_seen_ms = l->time;
    if (granted)
        minute->granted++;
    else
        minute->refused++;
    if (!granted) {
        unsigned code = (unsigned)l->error;

        k->refused_by_code[code < KPI_CODES ? code : ONCE_ERR_INTERNAL]++;
        dept->refused++;
        if (type != NULL)
            type->refused++;
        day->refused++;
    }
    switch (l->kind) {
    case ONCE__KIND__KIND_PUBLISH:
        if (!granted)
            break;
        k->publishes++;
        dept->publishes++;
        day->publishes++;
        if (type != NULL)
            type->publishes++;
        issued = publish_issued_at(txn, log, index, alloc);
        if (issued != 0)
            count_freshness(k, issued, l->time);
        break;
    case ONCE__KIND__KIND_REVOKE:
        if (!granted)
            break;
        k->revokes++;
        dept->revokes++;
        if (type != NULL)
            type->revokes++;
        break;
    case ONCE__KIND__KIND_REQUEST:
        day->requests++;
        if (granted) {
            k->requests_granted++;
            dept->requests_granted++;
            day->copies_avoided++;
            if (type != NULL)
                type->requests_granted++;
        } else {
            k->requests_refused++;
            dept->requests_refused++;
            if (type != NULL)
                type->requests_refused++;
        }
        break;
    default:
        break;
    }
}

typedef struct update {
    kpi *k;
    MDB_txn *txn;
    const auditlog *log;
    once_error *err;
} update;

static int count_one(uint64_t index, const MDB_val *leaf, void *arg)
{
    update *u = arg;
    kpi *k = u->k;
    ProtobufCAllocator alloc = arena_allocator(&k->decode);
    Once__LogLeaf *l = once__log_leaf__unpack(&alloc, leaf->mv_size,
                                              leaf->mv_data);

    if (l == NULL) {
        arena_reset(&k->decode);
        return once_error_set(u->err, ONCE_ERR_INTERNAL, "log leaf %llu "
                              "does not decode", (unsigned long long)index);
    }
    count_leaf(k, u->txn, u->log, index, l, &alloc);
    arena_reset(&k->decode);
    k->next_index = index + 1;
    return 0;
}

int kpi_update(kpi *k, MDB_txn *txn, const auditlog *log, size_t max_leaves,
               once_error *err)
{
    update u = { k, txn, log, err };
    uint64_t size, end;
    int rc;

    if ((rc = auditlog_size(txn, log, &size, err)) < 0)
        return rc;
    end = size - k->next_index > max_leaves ? k->next_index + max_leaves
                                            : size;
    return auditlog_leaf_each(txn, log, k->next_index, end, count_one, &u,
                              err);
}

double kpi_sharing_rate(const kpi *k)
{
    uint64_t all = k->requests_granted + k->requests_refused;

    return all == 0 ? 0 : (double)k->requests_granted / (double)all;
}

double kpi_freshness_median(const kpi *k)
{
    uint64_t seen = 0;
    size_t i;

    if (k->freshness_count == 0)
        return -1;
    for (i = 0; i < KPI_FRESHNESS_BUCKETS; i++) {
        seen += k->freshness_buckets[i];
        if (2 * seen >= k->freshness_count)
            return kpi_freshness_bounds[i];
    }
    return kpi_freshness_bounds[KPI_FRESHNESS_BUCKETS - 1];
}

/* ---- Prometheus -------------------------------------------------------- */

void kpi_write_label(FILE *out, const char *value)
{
    for (; *value != '\0'; value++) {
        if (*value == '\\' || *value == '"')
            fputc('\\', out);
        if (*value == '\n')
            fputs("\\n", out);
        else
            fputc(*value, out);
    }
}

static void write_counts(FILE *out, const char *metric, const char *label,
                         const kpi_counts *rows, size_t n)
{
    static const struct {
        const char *kind, *decision;
        size_t offset;
    } series[] = {
        {"publish", "granted", offsetof(kpi_counts, publishes)},
        {"revoke", "granted", offsetof(kpi_counts, revokes)},
        {"request", "granted", offsetof(kpi_counts, requests_granted)},
        {"request", "refused", offsetof(kpi_counts, requests_refused)},
    };
    size_t i, s;

    for (i = 0; i < n; i++)
        for (s = 0; s < sizeof(series) / sizeof(series[0]); s++) {
            fprintf(out, "%s{%s=\"", metric, label);
            kpi_write_label(out, rows[i].name);
            fprintf(out, "\",kind=\"%s\",decision=\"%s\"} %llu\n",
                    series[s].kind, series[s].decision,
                    (unsigned long long)*(const uint64_t *)(
                        (const char *)&rows[i] + series[s].offset));
        }
}

void kpi_write_metrics(const kpi *k, FILE *out)
{
    uint64_t cumulative = 0;
    size_t i;

    fprintf(out,
            "# HELP once_copies_avoided_total Granted requests in the "
            "exchange log: photocopies no applicant had to carry.\n"
            "# TYPE once_copies_avoided_total counter\n"
            "once_copies_avoided_total %llu\n"
            "# HELP once_sharing_rate Granted requests over all requests in "
            "the exchange log.\n"
            "# TYPE once_sharing_rate gauge\n"
            "once_sharing_rate %.6f\n"
            "# HELP once_log_refusals_total Refusals in the exchange log, by "
            "error code.\n"
            "# TYPE once_log_refusals_total counter\n",
            (unsigned long long)k->requests_granted, kpi_sharing_rate(k));
    for (i = 1; i < KPI_CODES; i++)
        if (k->refused_by_code[i] != 0)
            fprintf(out, "once_log_refusals_total{code=\"%s\"} %llu\n",
                    once_error_name((int)i),
                    (unsigned long long)k->refused_by_code[i]);
    fputs("# HELP once_department_exchanges_total Exchanges in the log by "
          "department (the sender), kind and decision.\n"
          "# TYPE once_department_exchanges_total counter\n", out);
    write_counts(out, "once_department_exchanges_total", "department",
                 k->departments.rows, k->departments.n);
    fputs("# HELP once_type_exchanges_total Exchanges in the log by record "
          "type, kind and decision.\n"
          "# TYPE once_type_exchanges_total counter\n", out);
    write_counts(out, "once_type_exchanges_total", "type", k->types.rows,
                 k->types.n);
    fputs("# HELP once_publish_freshness_seconds From a record's issued_at "
          "to its publish.\n"
          "# TYPE once_publish_freshness_seconds histogram\n", out);
    for (i = 0; i <= KPI_FRESHNESS_BUCKETS; i++) {
        cumulative += k->freshness_buckets[i];
        if (i < KPI_FRESHNESS_BUCKETS)
            fprintf(out, "once_publish_freshness_seconds_bucket{le=\"%g\"} "
                    "%llu\n", kpi_freshness_bounds[i],
                    (unsigned long long)cumulative);
        else
            fprintf(out, "once_publish_freshness_seconds_bucket{le=\"+Inf\"}"
                    " %llu\n", (unsigned long long)cumulative);
    }
    fprintf(out, "once_publish_freshness_seconds_sum %.3f\n"
            "once_publish_freshness_seconds_count %llu\n",
            (double)k->freshness_sum_ms / 1000.0,
            (unsigned long long)k->freshness_count);
}
