/*
 * test_kpi.c - the console's KPIs (broker/kpi.c) counted a few leaves at a
 * time equal the KPIs counted once over the whole log, and both equal the
 * totals of the exchanges written.
 *
 * The console keeps its KPIs by a cursor: each answer counts only the
 * leaves committed since the previous one, at most a bounded number of
 * them, and a restart counts the whole log again. A bug in that (a leaf
 * skipped or counted twice at a batch's edge, a table row found wrongly
 * through its name index) would show as numbers that drift from the log.
 * So a real LMDB log gets leaves in several commits (of every kind and
 * decision, a thousand-odd departments so that the table's "(other)" row
 * fills, days and minutes, a clock going back, publishes with evidence
 * carrying issued_at); one kpi is brought up to date after each commit
 * in small steps, as scrapes between exchanges do; another counts the
 * finished log at once, as after a restart. Every aggregate and the
 * rendered /metrics series must be the same, and equal what was written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auditlog.h"
#include "kpi.h"
#include "once.pb-c.h"
#include "store.h"
#include "temp_dir.h"

#define LEAVES 6000
#define DEPARTMENTS 1200      /* more than a table holds */
#define BUSY_DEPARTMENTS 16   /* most leaves come from these */
#define TYPES 5
#define START_MS 1700000000000ull

typedef struct totals {
    uint64_t requests_granted, requests_refused, publishes, revokes;
    uint64_t fresh, no_grant;
    uint64_t busy_granted[BUSY_DEPARTMENTS];
} totals;

typedef struct fixture {
    char dir[PATH_MAX];
    store s;
    auditlog log;
    uint64_t rng, time_ms;
    totals want;
} fixture;

static uint32_t next_random(fixture *f)
{
    f->rng = f->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(f->rng >> 33);
}

/* The evidence of a granted publish: an Envelope whose Publish carries a
 * record header with issued_at. Packed into buf; its length. */
static size_t publish_evidence(uint64_t issued_at, uint8_t *buf, size_t cap)
{
    Once__RecordHeader h = ONCE__RECORD_HEADER__INIT;
    Once__SignedRecord rec = ONCE__SIGNED_RECORD__INIT;
    Once__Publish pub = ONCE__PUBLISH__INIT;
    Once__Envelope env = ONCE__ENVELOPE__INIT;
    uint8_t header[256], body[512];

    h.type = "type-0";
    h.subject = "subject";
    h.issuer = "issuer";
    h.issued_at = issued_at;
    assert_true(once__record_header__get_packed_size(&h) <= sizeof(header));
    rec.header.len = once__record_header__pack(&h, header);
    rec.header.data = header;
    pub.record = &rec;
    assert_true(once__publish__get_packed_size(&pub) <= sizeof(body));
    env.kind = ONCE__KIND__KIND_PUBLISH;
    env.sender = "issuer";
    env.body.len = once__publish__pack(&pub, body);
    env.body.data = body;
    assert_true(once__envelope__get_packed_size(&env) <= cap);
    return once__envelope__pack(&env, buf);
}

/* Appends n made-up leaves in one committed transaction, adding what they
 * are to f->want. */
static void append_leaves(fixture *f, size_t n)
{
    char dept[32], type[32];
    uint8_t leaf[512], evidence[1024];
    size_t i, leaf_len, ev_len;
    uint64_t index;
    once_error err;
    MDB_txn *txn;

    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    for (i = 0; i < n; i++) {
        Once__LogLeaf l = ONCE__LOG_LEAF__INIT;
        uint32_t r = next_random(f);
        uint32_t d = r % 2 ? r / 2 % BUSY_DEPARTMENTS
                           : BUSY_DEPARTMENTS + r / 2 % DEPARTMENTS;
        bool granted = next_random(f) % 5 != 0;

        /* Minutes to hours apart, so that leaves span days; now and
         * then the broker clock goes back. */
        f->time_ms += next_random(f) % (7 * 60000u);
        if (next_random(f) % 500 == 0)
            f->time_ms -= 3 * 3600000u;
        snprintf(dept, sizeof(dept), "dept-%u", d);
        snprintf(type, sizeof(type), "type-%u", next_random(f) % TYPES);
        l.time = f->time_ms;
        l.department = dept;
        l.record_type = next_random(f) % 20 == 0 ? "" : type;
        l.kind = (Once__Kind[]){ONCE__KIND__KIND_PUBLISH,
                                ONCE__KIND__KIND_REVOKE,
                                ONCE__KIND__KIND_REQUEST,
                                ONCE__KIND__KIND_REQUEST}[next_random(f) % 4];
        l.decision = granted ? ONCE__DECISION__DECISION_GRANTED
                             : ONCE__DECISION__DECISION_REFUSED;
        l.error = granted ? 0 : (Once__ErrorCode)(
            next_random(f) % 2 ? ONCE_ERR_NO_GRANT : next_random(f) % 40 + 1);
        ev_len = 1;
        evidence[0] = 'x';
        if (l.kind == ONCE__KIND__KIND_PUBLISH && granted) {
            ev_len = publish_evidence(f->time_ms - next_random(f) % 100000,
                                      evidence, sizeof(evidence));
            f->want.publishes++;
            f->want.fresh++;
        }
        if (l.kind == ONCE__KIND__KIND_REVOKE && granted)
            f->want.revokes++;
        if (l.kind == ONCE__KIND__KIND_REQUEST && granted) {
            f->want.requests_granted++;
            if (r % 2)
                f->want.busy_granted[d]++;
        }
        if (l.kind == ONCE__KIND__KIND_REQUEST && !granted)
            f->want.requests_refused++;
        if ((int)l.error == ONCE_ERR_NO_GRANT)
            f->want.no_grant++;
        assert_true(once__log_leaf__get_packed_size(&l) <= sizeof(leaf));
        leaf_len = once__log_leaf__pack(&l, leaf);
        assert_int_equal(auditlog_append(txn, &f->log, leaf, leaf_len,
                                         evidence, ev_len, &index, &err), 0);
    }
    assert_int_equal(store_commit(txn, &err), 0);
}

/* Brings k up to date in steps of at most step leaves, as scrapes do. */
static void update(fixture *f, kpi *k, size_t step)
{
    uint64_t size, before;
    once_error err;
    MDB_txn *txn;

    do {
        before = k->next_index;
        assert_int_equal(store_begin(&f->s, 1, &txn, &err), 0);
        assert_int_equal(kpi_update(k, txn, &f->log, step, &err), 0);
        assert_int_equal(auditlog_size(txn, &f->log, &size, &err), 0);
        mdb_txn_abort(txn);
        assert_true(k->next_index - before <= step);
        /* Each answer counts something while leaves wait. */
        assert_true(k->next_index > before || k->next_index == size);
    } while (k->next_index < size);
    assert_int_equal(k->next_index, size);
}

static void assert_tables_equal(const kpi_table *a, const kpi_table *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->rows, b->rows, a->n * sizeof(*a->rows));
}

static char *metrics_text(const kpi *k)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    kpi_write_metrics(k, out);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void assert_kpis_equal(const kpi *a, const kpi *b)
{
    char *ta = metrics_text(a), *tb = metrics_text(b);

    assert_int_equal(a->next_index, b->next_index);
    assert_int_equal(a->first_leaf_ms, b->first_leaf_ms);
    assert_int_equal(a->publishes, b->publishes);
    assert_int_equal(a->revokes, b->revokes);
    assert_int_equal(a->requests_granted, b->requests_granted);
    assert_int_equal(a->requests_refused, b->requests_refused);
    assert_memory_equal(a->refused_by_code, b->refused_by_code,
                        sizeof(a->refused_by_code));
    assert_tables_equal(&a->departments, &b->departments);
    assert_tables_equal(&a->types, &b->types);
    assert_int_equal(a->n_days, b->n_days);
    assert_memory_equal(a->days, b->days, a->n_days * sizeof(*a->days));
    assert_memory_equal(a->minutes, b->minutes, sizeof(a->minutes));
    assert_memory_equal(a->freshness_buckets, b->freshness_buckets,
                        sizeof(a->freshness_buckets));
    assert_int_equal(a->freshness_sum_ms, b->freshness_sum_ms);
    assert_int_equal(a->freshness_count, b->freshness_count);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

static void test_incremental_equals_whole(void **state)
{
    fixture *f = *state;
    static const size_t commits[] = {1, 7, 300, 1, 2000, 91, 1600, 2000};
    static const size_t steps[] = {1, 3, 1000, 50, 7, 100000, 2, 999};
    kpi scraped, restarted;
    char name[32];
    size_t i, d, written = 0;
    once_error err;

    assert_int_equal(kpi_init(&scraped, &err), 0);
    /* Scraped before anything was logged: nothing to count yet. */
    update(f, &scraped, 10);
    assert_int_equal(scraped.next_index, 0);
    for (i = 0; i < sizeof(commits) / sizeof(commits[0]); i++) {
        append_leaves(f, commits[i]);
        written += commits[i];
        update(f, &scraped, steps[i]);
    }
    assert_int_equal(written, LEAVES);
    assert_int_equal(kpi_init(&restarted, &err), 0);
    update(f, &restarted, SIZE_MAX);
    assert_kpis_equal(&scraped, &restarted);

    /* And both are what was written. */
    assert_int_equal(restarted.next_index, LEAVES);
    assert_int_equal(restarted.requests_granted, f->want.requests_granted);
    assert_int_equal(restarted.requests_refused, f->want.requests_refused);
    assert_int_equal(restarted.publishes, f->want.publishes);
    assert_int_equal(restarted.revokes, f->want.revokes);
    assert_int_equal(restarted.freshness_count, f->want.fresh);
    assert_int_equal(restarted.refused_by_code[ONCE_ERR_NO_GRANT],
                     f->want.no_grant);
    assert_int_equal(restarted.departments.n, KPI_MAX_NAMES);
    assert_string_equal(restarted.departments.rows[KPI_MAX_NAMES - 1].name,
                        "(other)");
    assert_int_equal(restarted.types.n, TYPES);
    /* The busy departments came first, so each has its own row, found
     * through the name index with its exact count. */
    for (d = 0; d < BUSY_DEPARTMENTS; d++) {
        const kpi_counts *c;

        snprintf(name, sizeof(name), "dept-%zu", d);
        c = kpi_find(&scraped.departments, name);
        assert_non_null(c);
        assert_string_equal(c->name, name);
        assert_int_equal(c->requests_granted, f->want.busy_granted[d]);
    }
    assert_null(kpi_find(&scraped.departments, "no-such-department"));
    kpi_free(&scraped);
    kpi_free(&restarted);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    once_error err;

    if (f == NULL || temp_dir_make(f->dir, sizeof(f->dir), "test-kpi") < 0)
        return -1;
    if (store_open(&f->s, f->dir, 64u << 20, &err) < 0 ||
        auditlog_open(&f->log, &f->s, &err) < 0) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    f->rng = 42;
    f->time_ms = START_MS;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    store_close(&f->s);
    temp_dir_remove(f->dir);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_incremental_equals_whole, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
