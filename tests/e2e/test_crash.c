/*
 * test_crash.c - kill -9 the broker while it is publishing under load.
 *
 * Several publisher threads, each with its own session and connection,
 * pipeline signed publishes of distinct records. Once a third of them have
 * been acknowledged the broker is killed with SIGKILL: some publishes were
 * acknowledged, some committed but not yet acknowledged, some never
 * reached the disk. Before anything is re-sent, the database is read
 * directly and every acknowledged record must be in it: a retry would
 * store a lost record again and hide the loss. Then the broker is
 * restarted and every publisher re-sends every envelope, byte for byte,
 * as a client retrying after a timeout would. A second test does the same with SIGTERM, which must finish the
 * publishes in flight and exit 0. The promise under test (PROTOCOL.md 6.3,
 * DESIGN.md):
 *
 *   - a publish is acknowledged only once it is durable: every publish
 *     acknowledged before the kill is in the database after it;
 *   - a retry gets the original answer, never a second record: every
 *     re-sent envelope is answered with its success Response (a broker
 *     that stored it a second time would answer STALE_VERSION), and the
 *     database holds exactly one version of each record;
 *   - the count of records per type stored beside them (registry.c),
 *     which once_records reports, equals the records stored, after the
 *     kill and after the retries.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "registry.h"
#include "store.h"

#define LICENCE "business-licence"
#define PUBLISHERS 4
#define PER_PUBLISHER 150
#define TOTAL (PUBLISHERS * PER_PUBLISHER)
#define PIPELINE 16
#define ANSWER_TIMEOUT_MS 20000
/* Polling steps while waiting for acknowledgements before the kill. */
#define WAIT_STEP_MS 2
#define WAIT_STEPS 60000

typedef struct item {
    char subject[19];
    uint8_t *envelope;
    size_t len;
    atomic_bool acked;
    int code;           /* the answer's code before the kill, -1 if none */
} item;

typedef struct publisher {
    unsigned index;
    uint64_t session;
    item items[PER_PUBLISHER];
    pthread_t thread;
    int failure;        /* set by the thread: 0 or a line number */
} publisher;

static e2e_broker broker;
static e2e_dept market;
static publisher publishers[PUBLISHERS];
static atomic_size_t total_acked;
static atomic_bool killed;

static void build_items(publisher *p)
{
    size_t i;

    p->session = e2e_session();
    for (i = 0; i < PER_PUBLISHER; i++) {
        item *it = &p->items[i];
        once_record *r = NULL;
        once_error err;
        uint8_t *body;
        size_t body_len;

        e2e_uscc(it->subject, 3300000 + p->index * 1000 + (unsigned)i);
        assert_int_equal(once_record_new(&r, LICENCE, it->subject, 1,
                                         market.id, 0, 0, &err), 0);
        assert_int_equal(once_record_add_text(r, "name", "Crash Test Co.",
                                              &err), 0);
        assert_int_equal(once_record_add_text(r, "address", it->subject,
                                              &err), 0);
        assert_int_equal(once_record_sign(r, &market.kp, &err), 0);
        assert_int_equal(once_record_serialize(r, &body, &body_len, &err), 0);
        once_record_free(r);
        /* seq i + 1: the answer's reply_to finds the item. */
        assert_int_equal(e2e_envelope(&it->envelope, &it->len, market.id,
                                      p->session, i + 1, once_now_ms(),
                                      ONCE__KIND__KIND_PUBLISH, body, body_len,
                                      &market.kp), 0);
        free(body);
        atomic_init(&it->acked, false);
        it->code = -1;
    }
}

/* Publishes with PIPELINE envelopes in flight until everything is
 * answered or the broker is killed. */
static void *publish_until_killed(void *arg)
{
    publisher *p = arg;
    size_t next = 0, outstanding = 0;
    e2e_raw r;

    if (e2e_raw_open(&r, &broker, &market.kp) != 0) {
        p->failure = __LINE__;
        return NULL;
    }
    while (!atomic_load(&killed)) {
        Once__Envelope *reply = NULL;
        int rc;

        while (next < PER_PUBLISHER && outstanding < PIPELINE) {
            if (e2e_raw_send(&r, p->items[next].envelope,
                             p->items[next].len) != 0) {
                p->failure = __LINE__;
                goto out;
            }
            next++;
            outstanding++;
        }
        if (outstanding == 0)
            break;
        rc = e2e_raw_recv(&r, 50, &reply);
        if (rc < 0) {
            p->failure = __LINE__;
            break;
        }
        if (rc == 0)
            continue;
        if (reply->reply_to < 1 || reply->reply_to > PER_PUBLISHER) {
            p->failure = __LINE__;
        } else {
            item *it = &p->items[reply->reply_to - 1];

            it->code = e2e_reply_code(reply);
            if (it->code == 0) {
                atomic_store(&it->acked, true);
                atomic_fetch_add(&total_acked, 1);
            }
            outstanding--;
        }
        once__envelope__free_unpacked(reply, NULL);
    }
out:
    e2e_raw_close(&r);
    return NULL;
}

/* Re-sends every envelope of p and checks each answer is its success
 * Response. */
static void retry_all(publisher *p)
{
    bool answered[PER_PUBLISHER] = { false };
    size_t sent = 0, received = 0;
    e2e_raw r;

    assert_int_equal(e2e_raw_open(&r, &broker, &market.kp), 0);
    while (received < PER_PUBLISHER) {
        Once__Envelope *reply = NULL;
        Once__Response *response;
        item *it;

        while (sent < PER_PUBLISHER && sent - received < PIPELINE) {
            assert_int_equal(e2e_raw_send(&r, p->items[sent].envelope,
                                          p->items[sent].len), 0);
            sent++;
        }
        if (e2e_raw_recv(&r, ANSWER_TIMEOUT_MS, &reply) != 1) {
            e2e_dump_log(&broker);
            fail_msg("publisher %u: no answer to a retry", p->index);
        }
        assert_true(reply->reply_to >= 1 && reply->reply_to <= PER_PUBLISHER);
        it = &p->items[reply->reply_to - 1];
        assert_false(answered[reply->reply_to - 1]);
        answered[reply->reply_to - 1] = true;
        if (e2e_reply_code(reply) != 0)
            fail_msg("publisher %u seq %llu (acked before the kill: %d): "
                     "retry answered with error %d", p->index,
                     (unsigned long long)reply->reply_to,
                     (int)atomic_load(&it->acked), e2e_reply_code(reply));
        response = once__response__unpack(NULL, reply->body.len,
                                          reply->body.data);
        assert_non_null(response);
        assert_int_equal(response->version, 1);
        assert_string_equal(response->subject, it->subject);
        assert_int_equal(response->status, ONCE__RECORD_STATUS__STATUS_VALID);
        once__response__free_unpacked(response, NULL);
        once__envelope__free_unpacked(reply, NULL);
        received++;
    }
    e2e_raw_close(&r);
}

typedef struct history_count {
    size_t versions;
} history_count;

static int count_version(uint64_t version, const MDB_val *value, void *arg)
{
    history_count *c = arg;

    (void)version;
    (void)value;
    c->versions++;
    return 0;
}

/* The count of records registry.c stores per type is bumped in the
 * transaction that stores each record, so after a kill it still equals
 * the records really there, which onced reports at its next start
 * (once_records, seeded from it). */
static void check_stored_count(MDB_txn *txn, const store *s)
{
    uint8_t key[1 + sizeof(LICENCE)];
    MDB_val k = { sizeof(key) - 1, key }, v;
    size_t records;
    once_error err;

    key[0] = (uint8_t)strlen(LICENCE);
    memcpy(key + 1, LICENCE, strlen(LICENCE));
    assert_int_equal(registry_count(txn, s, &records, NULL, &err), 0);
    assert_int_equal(mdb_get(txn, s->record_counts, &k, &v), MDB_SUCCESS);
    assert_int_equal(v.mv_size, 8);
    assert_int_equal(store_get_u64be(v.mv_data), records);
}

/* Before any retry: every publish acknowledged before the stop is in the
 * database, exactly once. Returns how many were checked. */
static size_t check_acknowledged(void)
{
    char db_path[PATH_MAX + 8];
    size_t checked = 0, i;
    once_error err;
    MDB_txn *txn;
    store s;
    unsigned p;

    snprintf(db_path, sizeof(db_path), "%s/db", broker.home);
    assert_int_equal(store_open(&s, db_path, 0, &err), 0);
    assert_int_equal(store_begin(&s, 1, &txn, &err), 0);
    for (p = 0; p < PUBLISHERS; p++) {
        for (i = 0; i < PER_PUBLISHER; i++) {
            const item *it = &publishers[p].items[i];
            history_count c = { 0 };

            if (!atomic_load(&it->acked))
                continue;
            assert_int_equal(registry_history(txn, &s, LICENCE, it->subject,
                                              count_version, &c, &err), 0);
            if (c.versions != 1)
                fail_msg("publisher %u seq %zu was acknowledged but %zu "
                         "versions of it are stored", p, i + 1, c.versions);
            checked++;
        }
    }
    if (checked > 0)
        check_stored_count(txn, &s);
    mdb_txn_abort(txn);
    store_close(&s);
    return checked;
}

/* Reads the broker's database directly once it has stopped. */
static void check_database(void)
{
    char db_path[PATH_MAX + 8];
    size_t records, versions;
    once_error err;
    MDB_txn *txn;
    store s;
    unsigned p;
    size_t i;

    snprintf(db_path, sizeof(db_path), "%s/db", broker.home);
    assert_int_equal(store_open(&s, db_path, 0, &err), 0);
    assert_int_equal(store_begin(&s, 1, &txn, &err), 0);
    assert_int_equal(registry_count(txn, &s, &records, &versions, &err), 0);
    assert_int_equal(records, TOTAL);
    assert_int_equal(versions, TOTAL);
    check_stored_count(txn, &s);
    for (p = 0; p < PUBLISHERS; p++) {
        for (i = 0; i < PER_PUBLISHER; i++) {
            history_count c = { 0 };

            assert_int_equal(registry_history(txn, &s, LICENCE,
                                              publishers[p].items[i].subject,
                                              count_version, &c, &err), 0);
            assert_int_equal(c.versions, 1);
        }
    }
    mdb_txn_abort(txn);
    store_close(&s);
}

/* Publishes under load, stops the broker with sig once a third is
 * acknowledged, restarts it, retries everything and checks the database. */
static void interrupt_publishes(int sig)
{
    struct timespec step = { 0, WAIT_STEP_MS * 1000000L };
    size_t acked_before;
    unsigned p;
    size_t i;
    int n;

    atomic_store(&total_acked, 0);
    atomic_store(&killed, false);
    for (p = 0; p < PUBLISHERS; p++) {
        memset(&publishers[p], 0, sizeof(publishers[p]));
        publishers[p].index = p;
        build_items(&publishers[p]);
    }
    for (p = 0; p < PUBLISHERS; p++)
        assert_int_equal(pthread_create(&publishers[p].thread, NULL,
                                        publish_until_killed,
                                        &publishers[p]), 0);
    for (n = 0; n < WAIT_STEPS && atomic_load(&total_acked) < TOTAL / 3; n++)
        nanosleep(&step, NULL);
    if (sig == SIGKILL)
        e2e_kill(&broker);
    else
        assert_int_equal(e2e_stop(&broker), 0); /* drains, then exits 0 */
    atomic_store(&killed, true);
    for (p = 0; p < PUBLISHERS; p++) {
        pthread_join(publishers[p].thread, NULL);
        if (publishers[p].failure != 0)
            fail_msg("publisher %u failed at line %d", p,
                     publishers[p].failure);
    }
    acked_before = atomic_load(&total_acked);
    assert_true(acked_before >= TOTAL / 3);
    for (p = 0; p < PUBLISHERS; p++)
        for (i = 0; i < PER_PUBLISHER; i++)
            if (publishers[p].items[i].code > 0)
                fail_msg("publisher %u seq %zu refused before the kill: %d",
                         p, i + 1, publishers[p].items[i].code);
    printf("# %zu of %d publishes acknowledged before %s\n", acked_before,
           TOTAL, sig == SIGKILL ? "kill -9" : "SIGTERM");
    assert_int_equal(check_acknowledged(), acked_before);

    assert_int_equal(e2e_start(&broker, &market, NULL), 0);
    for (p = 0; p < PUBLISHERS; p++)
        retry_all(&publishers[p]);
    assert_true(e2e_log_contains(&broker, "listening"));
    assert_int_equal(e2e_stop(&broker), 0);
    check_database();
}

static void test_kill_during_publishes(void **state)
{
    (void)state;
    interrupt_publishes(SIGKILL);
}

static void test_sigterm_during_publishes(void **state)
{
    (void)state;
    interrupt_publishes(SIGTERM);
}

/* Each test gets its own broker home. */
static int setup(void **state)
{
    (void)state;
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_oncectl(&broker, "type", "add", LICENCE, "--issuer", market.id,
                    "--subject", "enterprise", "--fields", "name,address",
                    NULL) != 0)
        return -1;
    return e2e_start(&broker, &market, NULL);
}

static int teardown(void **state)
{
    unsigned p;
    size_t i;

    (void)state;
    for (p = 0; p < PUBLISHERS; p++) {
        for (i = 0; i < PER_PUBLISHER; i++) {
            free(publishers[p].items[i].envelope);
            publishers[p].items[i].envelope = NULL;
        }
    }
    e2e_cleanup(&broker);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_during_publishes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_during_publishes, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
