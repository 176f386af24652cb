/*
 * console_api.c - the console's answers: the JSON API under /api/v1/, the
 * health checks and the /metrics page.
 *
 * Everything here runs on the console thread (console.c) and reads the
 * database in one LMDB read transaction per answer, which neither waits
 * for the writer nor makes it wait. JSON is built with jansson and never
 * by hand, so every string from the database is escaped by the library.
 *
 *   GET /api/v1/status       version, names, log origin, uptime, log head
 *                            (tree size, newest checkpoint), map use,
 *                            exchanges since start and latency buckets,
 *                            departments connected now, queue depths
 *   GET /api/v1/departments  each registered department: status, its
 *                            CURVE connections open now (the connection
 *                            table, conn_limit.c) and so whether it is
 *                            connected, last seen, publishes, requests
 *                            and refusals (log)
 *   GET /api/v1/types        the catalogue, with counts from the log
 *   GET /api/v1/grants       who may read what, for which purpose
 *   GET /api/v1/exchanges    recent leaves, newest first, paged by leaf
 *                            index: ?before=N (exclusive, default the tree
 *                            size) &limit=M (1..100, default 20); time,
 *                            department, kind, type, purpose, case id,
 *                            acting user ("" when none), decision, error,
 *                            version. Never the subject
 *                            hash: the console is no lookup service.
 *   GET /api/v1/kpis         copies avoided (total, per type, per
 *                            requesting department, per day), sharing
 *                            rate, refusals by code, publish freshness,
 *                            participation, and the last hour by minute
 *
 * Health. /healthz says whether the broker can do its job now: the writer
 * has exchanges waiting and has not committed for WRITER_STALL_MS, or its
 * newest transaction failed (a full map, a disk error) and none succeeded
 * since. /readyz adds what should send traffic elsewhere or wake someone:
 * the map at its high-water mark (high_water_percent of map_size_mb, where
 * the writer refuses publishes STORAGE_FULL), the oldest unsigned leaf
 * older than three checkpoint intervals, a database the console cannot
 * read. 503 lists every reason found, one a line.
 *
 * Query arguments are outside bytes: numbers are parsed strictly (digits
 * only, in range, console_input.c) and anything else is a 400.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "console.h"
#include "envelope.h"
#include "metrics.h"
#include "monotonic.h"
#include "once.pb-c.h"
#include "policy.h"
#include "worker.h"

#ifndef ONCE_VERSION
#define ONCE_VERSION "unknown"
#endif

#define WRITER_STALL_MS 10000u
#define KPI_LEAVES_PER_ANSWER 200000
#define EXCHANGES_DEFAULT 20
#define EXCHANGES_MAX 100
#define IDLE_AFTER_MS (30ull * 86400000u)
#define MS_PER_DAY 86400000u

static void answer_json(console_answer *out, json_t *root)
{
    out->body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (out->body == NULL) {
        console_answer_text(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "out of memory\n");
        return;
    }
    out->status = MHD_HTTP_OK;
    out->len = strlen(out->body);
    out->content_type = "application/json";
}

static void answer_error(console_answer *out, int status, const char *what)
{
    char text[512];

    snprintf(text, sizeof(text), "%s\n", what);
    console_answer_text(out, status, text);
}

/* Reads the leaves committed since the last answer into the KPIs. */
static int refresh_kpi(console_state *st, MDB_txn *txn, once_error *err)
{
    return kpi_update(&st->kpi, txn, st->log, KPI_LEAVES_PER_ANSWER, err);
}

/* ---- status ---------------------------------------------------------- */

static json_t *status_json(console_state *st, MDB_txn *txn, once_error *err)
{
    const broker_config *cfg = st->cfg;
    metrics_live live;
    metrics_log head;
    metrics_queues q;
    uint64_t used, size;
    json_t *root, *buckets;
    size_t i;

    if (metrics_log_state(txn, st->log, &head, err) < 0)
        return NULL;
    metrics_map_use(st->db, &used, &size);
    metrics_live_get(&live);
    buckets = json_array();
    for (i = 0; i <= live.n_bounds; i++)
        json_array_append_new(buckets, json_pack(
            "{s:o, s:I}", "le",
            i < live.n_bounds ? json_real(live.latency_bounds[i])
                              : json_string("+Inf"),
            "count", (json_int_t)live.latency_le[i]));
    root = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:{s:I, s:I, s:s%, s:f}, "
        "s:{s:I, s:I, s:f}, s:I, s:{s:I, s:I, s:o}}",
        "version", ONCE_VERSION, "name", cfg->name,
        "log_origin", cfg->log_origin,
        "now_ms", (json_int_t)once_now_ms(),
        "started_ms", (json_int_t)st->started_ms,
        "uptime_seconds", (json_int_t)((once_now_ms() - st->started_ms) / 1000),
        "log", "tree_size", (json_int_t)head.tree_size,
        "checkpoint_size", (json_int_t)head.signed_size,
        "checkpoint", head.note.mv_size > 0 ? (const char *)head.note.mv_data
                                            : "",
        head.note.mv_size,
        "unsigned_age_seconds", (double)head.unsigned_age_ms / 1000.0,
        "map", "used_bytes", (json_int_t)used, "size_bytes", (json_int_t)size,
        "used_ratio", size > 0 ? (double)used / (double)size : 0.0,
        "checkpoint_interval_ms", (json_int_t)cfg->checkpoint_interval_ms,
        "since_start", "granted", (json_int_t)live.granted,
        "refused", (json_int_t)live.refused, "latency_buckets", buckets);
    metrics_queues_get(&q);
    json_object_set_new(root, "connected_departments", json_integer(
        conn_limit_departments_connected(st->connections)));
    json_object_set_new(root, "queues", json_pack(
        "{s:I, s:I, s:I}", "workers", (json_int_t)q.workers,
        "writer", (json_int_t)q.writer, "answers", (json_int_t)q.answers));
    return root;
}

/* ---- departments, types, grants -------------------------------------- */

typedef struct walk {
    console_state *st;
    json_t *list;
} walk;

static json_t *counts_json(const kpi_counts *c)
{
    static const kpi_counts none;

    if (c == NULL)
        c = &none;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                     "publishes", (json_int_t)c->publishes,
                     "revokes", (json_int_t)c->revokes,
                     "requests_granted", (json_int_t)c->requests_granted,
                     "requests_refused", (json_int_t)c->requests_refused,
                     "refusals", (json_int_t)c->refused,
                     "last_seen_ms", (json_int_t)c->last_seen_ms);
}

static int department_json(const department *d, void *arg)
{
    walk *w = arg;
    const kpi *k = &w->st->kpi;
    unsigned open = conn_limit_open(w->st->connections, d->id);
    json_t *o = counts_json(kpi_find(&k->departments, d->id));

    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "name", json_string(d->name));
    json_object_set_new(o, "connections", json_integer(open));
    json_object_set_new(o, "connected", json_boolean(open > 0));
    json_object_set_new(o, "status", json_string(
        d->status == DEPARTMENT_ACTIVE ? "active" : "suspended"));
    json_array_append_new(w->list, o);
    return 0;
}

static json_t *names_json(const char (*names)[ONCE_MAX_NAME + 1], size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static int type_json(const record_type *t, void *arg)
{
    walk *w = arg;
    const kpi *k = &w->st->kpi;
    json_t *o = counts_json(kpi_find(&k->types, t->name));

    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "subject", json_string(
        t->subject_kind == ONCE_SUBJECT_ENTERPRISE ? "enterprise"
                                                   : "person"));
    json_object_set_new(o, "issuers", names_json(t->issuers,
                                                 t->issuer_count));
    json_object_set_new(o, "fields", names_json(t->fields, t->field_count));
    json_array_append_new(w->list, o);
    return 0;
}

static int grant_json(const grant *g, void *arg)
{
    walk *w = arg;

    json_array_append_new(w->list, json_pack(
        "{s:s, s:s, s:s, s:o, s:I}", "requester", g->requester,
        "type", g->type, "purpose", g->purpose,
        "fields", names_json(g->fields, g->field_count),
        "created_ms", (json_int_t)g->created_at));
    return 0;
}

/* ---- exchanges -------------------------------------------------------- */

/* A decimal argument in [min, max]; def when absent. -1 when malformed. */
static int number_arg(console_arg_fn arg, void *ctx, const char *key,
                      uint64_t min, uint64_t max, uint64_t def, uint64_t *out)
{
    const char *text = arg(ctx, key);

    if (text == NULL) {
        *out = def;
        return 0;
    }
    return console_parse_number(text, min, max, out);
}

static json_t *leaf_json(uint64_t index, const Once__LogLeaf *l)
{
    bool granted = l->decision == ONCE__DECISION__DECISION_GRANTED;

    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                     "s:I}",
                     "index", (json_int_t)index, "time_ms",
                     (json_int_t)l->time, "department", l->department,
                     "kind", kind_name(l->kind), "type", l->record_type,
                     "purpose", l->purpose, "case_id", l->case_id,
                     "user", l->user,
                     "decision", granted ? "granted" : "refused",
                     "error", granted ? "" : once_error_name((int)l->error),
                     "version", (json_int_t)l->record_version);
}

static json_t *exchanges_json(console_state *st, MDB_txn *txn,
                              uint64_t before, uint64_t limit,
                              once_error *err)
{
    uint64_t size, i;
    json_t *list;
    MDB_val v;

    if (auditlog_size(txn, st->log, &size, err) < 0)
        return NULL;
    if (before > size)
        before = size;
    list = json_array();
    for (i = before; i > 0 && before - i < limit; i--) {
        Once__LogLeaf *l;

        if (auditlog_leaf_get(txn, st->log, i - 1, &v, err) < 0)
            break;
        l = once__log_leaf__unpack(NULL, v.mv_size, v.mv_data);
        if (l == NULL)
            continue;
        json_array_append_new(list, leaf_json(i - 1, l));
        once__log_leaf__free_unpacked(l, NULL);
    }
    return json_pack("{s:I, s:I, s:I, s:o}", "tree_size", (json_int_t)size,
                     "before", (json_int_t)before, "next_before",
                     (json_int_t)i, "exchanges", list);
}

/* ---- KPIs -------------------------------------------------------------- */

static json_t *per_name(const kpi_table *t, bool requests)
{
    const kpi_counts *rows = t->rows;
    json_t *o = json_object();
    size_t i;

    for (i = 0; i < t->n; i++)
        if (!requests || rows[i].requests_granted + rows[i].requests_refused)
            json_object_set_new(o, rows[i].name, json_integer(
                (json_int_t)rows[i].requests_granted));
    return o;
}

typedef struct participation {
    const kpi *k;
    uint64_t now;
    json_int_t registered, publishing, requesting, idle;
} participation;

static int count_participation(const department *d, void *arg)
{
    participation *p = arg;
    const kpi_counts *c = kpi_find(&p->k->departments, d->id);

    p->registered++;
    if (c != NULL && c->publishes > 0)
        p->publishing++;
    if (c != NULL && c->requests_granted + c->requests_refused > 0)
        p->requesting++;
    if (c == NULL || c->last_seen_ms + IDLE_AFTER_MS < p->now)
        p->idle++;
    return 0;
}

static json_t *kpis_json(console_state *st, MDB_txn *txn, once_error *err)
{
    const kpi *k = &st->kpi;
    participation p = { k, once_now_ms(), 0, 0, 0, 0 };
    json_t *days = json_array(), *codes = json_object();
    json_t *minutes = json_array(), *fresh = json_array();
    uint64_t now_minute = p.now / 60000u, cumulative = 0;
    size_t i;

    if (policy_department_list(txn, st->db, count_participation, &p, err) < 0)
        return NULL;
    for (i = 0; i < k->n_days; i++)
        json_array_append_new(days, json_pack(
            "{s:I, s:I, s:I, s:I, s:I}", "day_ms",
            (json_int_t)(k->days[i].day * MS_PER_DAY), "copies_avoided",
            (json_int_t)k->days[i].copies_avoided, "requests",
            (json_int_t)k->days[i].requests, "publishes",
            (json_int_t)k->days[i].publishes, "refusals",
            (json_int_t)k->days[i].refused));
    for (i = 1; i < KPI_CODES; i++)
        if (k->refused_by_code[i] != 0)
            json_object_set_new(codes, once_error_name((int)i), json_integer(
                (json_int_t)k->refused_by_code[i]));
    /* Oldest minute first, every one of the last hour present. */
    for (i = KPI_MINUTES; i > 0; i--) {
        uint64_t minute = now_minute - (i - 1);
        const kpi_minute *m = &k->minutes[minute % KPI_MINUTES];
        bool here = m->minute == minute;

        json_array_append_new(minutes, json_pack(
            "{s:I, s:I, s:I}", "minute_ms", (json_int_t)(minute * 60000u),
            "granted", (json_int_t)(here ? m->granted : 0),
            "refused", (json_int_t)(here ? m->refused : 0)));
    }
    for (i = 0; i <= KPI_FRESHNESS_BUCKETS; i++) {
        cumulative += k->freshness_buckets[i];
        json_array_append_new(fresh, json_pack(
            "{s:o, s:I}", "le",
            i < KPI_FRESHNESS_BUCKETS ? json_real(kpi_freshness_bounds[i])
                                      : json_string("+Inf"),
            "count", (json_int_t)cumulative));
    }
    return json_pack(
        "{s:I, s:{s:I, s:o, s:o, s:o}, s:f, s:I, s:I, s:o, "
        "s:{s:I, s:f, s:f, s:o}, s:{s:I, s:I, s:I, s:I}, s:o, s:I}",
        "leaves_counted", (json_int_t)k->next_index,
        "copies_avoided", "total", (json_int_t)k->requests_granted,
        "per_type", per_name(&k->types, true),
        "per_department", per_name(&k->departments, true),
        "per_day", days,
        "sharing_rate", kpi_sharing_rate(k),
        "requests", (json_int_t)(k->requests_granted + k->requests_refused),
        "publishes", (json_int_t)k->publishes,
        "refusals_by_code", codes,
        "publish_freshness", "count", (json_int_t)k->freshness_count,
        "median_seconds_at_most", kpi_freshness_median(k),
        "mean_seconds", k->freshness_count > 0
            ? (double)k->freshness_sum_ms / 1000.0 / (double)k->freshness_count
            : 0.0,
        "buckets", fresh,
        "participation", "registered", p.registered, "publishing",
        p.publishing, "requesting", p.requesting, "idle_30_days", p.idle,
        "last_hour", minutes,
        "first_leaf_ms", (json_int_t)k->first_leaf_ms);
}

/* ---- routing ----------------------------------------------------------- */

void console_api_get(console_state *st, const char *name, console_arg_fn arg,
                     void *ctx, console_answer *out)
{
    walk w = { st, NULL };
    uint64_t before = 0, limit = 0;
    json_t *root = NULL;
    once_error err;
    MDB_txn *txn;
    int rc = 0;

    if (strcmp(name, "exchanges") == 0 &&
        (number_arg(arg, ctx, "before", 0, UINT64_MAX >> 1, UINT64_MAX >> 1,
                    &before) < 0 ||
         number_arg(arg, ctx, "limit", 1, EXCHANGES_MAX, EXCHANGES_DEFAULT,
                    &limit) < 0)) {
        answer_error(out, MHD_HTTP_BAD_REQUEST, "before must be a leaf index "
                     "and limit 1 to 100");
        return;
    }
    if (store_begin(st->db, 1, &txn, &err) < 0) {
        answer_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, err.message);
        return;
    }
    /* What a NULL from jansson means. */
    once_error_set(&err, ONCE_ERR_NO_MEMORY, "out of memory");
    rc = refresh_kpi(st, txn, &err);
    if (rc < 0) {
        /* A log that cannot be read: answered as the error it is. */
    } else if (strcmp(name, "status") == 0) {
        root = status_json(st, txn, &err);
    } else if (strcmp(name, "departments") == 0) {
        w.list = json_array();
        rc = policy_department_list(txn, st->db, department_json, &w, &err);
        root = json_pack("{s:o}", "departments", w.list);
    } else if (strcmp(name, "types") == 0) {
        w.list = json_array();
        rc = policy_type_list(txn, st->db, type_json, &w, &err);
        root = json_pack("{s:o}", "types", w.list);
    } else if (strcmp(name, "grants") == 0) {
        w.list = json_array();
        rc = policy_grant_list(txn, st->db, grant_json, &w, &err);
        root = json_pack("{s:o}", "grants", w.list);
    } else if (strcmp(name, "exchanges") == 0) {
        root = exchanges_json(st, txn, before, limit, &err);
    } else if (strcmp(name, "kpis") == 0) {
        root = kpis_json(st, txn, &err);
    } else {
        mdb_txn_abort(txn);
        answer_error(out, MHD_HTTP_NOT_FOUND, "no such API: see "
                     "docs/OPERATIONS.md");
        return;
    }
    mdb_txn_abort(txn);
    if (rc < 0 || root == NULL) {
        json_decref(root);
        answer_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, err.message);
        return;
    }
    answer_json(out, root);
}

/* ---- health and metrics ------------------------------------------------- */

void console_health(console_state *st, bool ready, console_answer *out)
{
    char text[1024];
    size_t len = 0;
    metrics_writer_state ws;
    uint64_t now = monotonic_ns(), used, size, limit_ms;
    metrics_log head;
    once_error err;
    MDB_txn *txn;

#define REASON(...)                                                         \
    do {                                                                    \
        if (len < sizeof(text))                                             \
            len += (size_t)snprintf(text + len, sizeof(text) - len,         \
                                    __VA_ARGS__);                           \
    } while (0)

    metrics_writer_state_get(&ws);
    if (ws.queued > 0 && ws.last_commit_ns + WRITER_STALL_MS * 1000000ull <
                             now &&
        (once_now_ms() - st->started_ms) > WRITER_STALL_MS)
        REASON("writer: %llu exchanges waiting and no commit for over %u "
               "s\n", (unsigned long long)ws.queued, WRITER_STALL_MS / 1000);
    if (ws.last_failure_code != 0 && ws.last_failure_ns > ws.last_commit_ns)
        REASON("database: the newest commit failed with %s and none "
               "succeeded since\n", once_error_name(ws.last_failure_code));
    if (ready) {
        metrics_map_use(st->db, &used, &size);
        if (st->cfg->high_water_percent < 100 &&
            used >= size / 100 * st->cfg->high_water_percent)
            REASON("map: %llu of %llu bytes used, at high_water_percent "
                   "(%u%%): publishes are refused STORAGE_FULL; raise "
                   "map_size_mb\n", (unsigned long long)used,
                   (unsigned long long)size, st->cfg->high_water_percent);
        limit_ms = 3ull * st->cfg->checkpoint_interval_ms;
        if (limit_ms < 1000)
            limit_ms = 1000;
        if (store_begin(st->db, 1, &txn, &err) < 0) {
            REASON("database: cannot read: %s\n", err.message);
        } else {
            if (metrics_log_state(txn, st->log, &head, &err) < 0)
                REASON("log: cannot read: %s\n", err.message);
            else if (head.unsigned_age_ms > limit_ms)
                REASON("log: leaf %llu has waited %.1f s for a signed "
                       "checkpoint (over three intervals)\n",
                       (unsigned long long)head.signed_size,
                       (double)head.unsigned_age_ms / 1000.0);
            mdb_txn_abort(txn);
        }
    }
#undef REASON
    if (len == 0)
        console_answer_text(out, MHD_HTTP_OK, "ok\n");
    else
        console_answer_text(out, MHD_HTTP_SERVICE_UNAVAILABLE, text);
}

void console_metrics(console_state *st, console_answer *out)
{
    char *buf = NULL;
    size_t len = 0;
    once_error err;
    MDB_txn *txn;
    FILE *f = open_memstream(&buf, &len);
    bool db_ok = false;

    if (f == NULL) {
        console_answer_text(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "out of memory\n");
        return;
    }
    metrics_write_data_path(f);
    metrics_write_process(f);
    if (store_begin(st->db, 1, &txn, &err) == 0) {
        db_ok = metrics_write_store(f, txn, st->db, st->log,
                                    st->cfg->high_water_percent, &err) == 0 &&
                refresh_kpi(st, txn, &err) == 0;
        mdb_txn_abort(txn);
    }
    kpi_write_metrics(&st->kpi, f);
    fprintf(f, "# HELP once_connected_departments Departments with at "
            "least one CURVE connection open now.\n"
            "# TYPE once_connected_departments gauge\n"
            "once_connected_departments %u\n",
            conn_limit_departments_connected(st->connections));
    fprintf(f, "# HELP once_console_database_up 1 when the console could "
            "read the database for this scrape.\n"
            "# TYPE once_console_database_up gauge\n"
            "once_console_database_up %d\n", db_ok ? 1 : 0);
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        console_answer_text(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "out of memory\n");
        return;
    }
    out->status = MHD_HTTP_OK;
    out->body = buf;
    out->len = len;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
