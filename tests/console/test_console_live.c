/*
 * test_console_live.c - the console's live series against a real onced:
 * who is connected, records per type, refusals answered without a leaf,
 * the queues at rest (issue 10).
 *
 * test_console.py drives its broker with once-demo-enterprise, whose
 * clients are gone by the time it scrapes, and cannot hold a connection
 * open or publish chosen subjects. This program can, through libonce's
 * client (the e2e harness, tests/e2e/harness.h), and reads /metrics and
 * /api/v1/ with libcurl and the bearer token, as Prometheus would:
 *
 *   connected   once_connected_departments is 1 while a department's
 *               client is open, 0 once it closed, and its row in
 *               /api/v1/departments says connected, then not;
 *   records     N publishes of distinct subjects and a new version of one
 *               of them make once_records{type=...} N, in the running
 *               broker and again after a restart (seeded from the counts
 *               LMDB stores with the records), after a kill -9, and after
 *               a start on a home without stored counts (an older
 *               version's: counted once from the records);
 *   unlogged    a department refused more often than its budget of logged
 *               refusals (max_logged_refusals_per_department = BUDGET, a
 *               day's window, so nothing refills): BUDGET NO_GRANT leaves
 *               and OVER in once_exchanges_unlogged_total{reason=
 *               "refusal_budget"};
 *   queues      once_queue_depth of every queue 0 once all is answered,
 *               and `promtool check metrics` clean when promtool exists;
 *   notices     once_subscriptions{scope} after subscribes and a cancel,
 *               once_notice_events_total after a publish and a revoke,
 *               once_notices_delivered_total{department,via} after a pull
 *               and pushes, once_notice_acks_total after an
 *               acknowledgement, and once_notice_events_stored down to
 *               the newest event once the only subscriber acknowledged
 *               both (pruning, awaited by bounded polls).
 *
 * The connection count follows libzmq's monitor events, which the ZAP
 * thread reads as they come: its changes are awaited by bounded polls,
 * never by timed assertions.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"
#include "store.h"

#define LICENCE "business-licence"
#define PURPOSE "tax-registration"
#define SUBJECTS 5
#define BUDGET 3
#define OVER 4
#define POLL_MS 100
#define POLL_LIMIT 300 /* 30 s: only a broken broker gets there */

static e2e_broker broker;
static e2e_dept market, tax, flood;
static char base[64], auth[128];

typedef struct body {
    char *data;
    size_t len;
} body;

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    char *grown = realloc(b->data, b->len + size * n + 1);

    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, p, size * n);
    b->data = grown;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET path with the token: the body (malloc'd), failing the test unless
 * the answer is 200. */
static char *get(const char *path)
{
    char url[256];
    body b = { NULL, 0 };
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    CURL *c = curl_easy_init();
    long status = 0;
    CURLcode rc;

    assert_non_null(c);
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK || status != 200 || b.data == NULL)
        fail_msg("GET %s: %s, HTTP %ld", path, curl_easy_strerror(rc),
                 status);
    return b.data;
}

/* The value of the sample `series` (name and labels exactly as exposed),
 * -1 when /metrics has no such line. */
static double sample(const char *text, const char *series)
{
    size_t len = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[len] == ' ')
            return strtod(p + len + 1, NULL);
        p += len;
    }
    return -1;
}

static double scrape(const char *series)
{
    char *text = get("/metrics");
    double v = sample(text, series);

    free(text);
    return v;
}

/* Polls until series has value want; fails the test after POLL_LIMIT. */
static void await(const char *series, double want)
{
    struct timespec pause = { 0, POLL_MS * 1000000L };
    double got = -1;
    int i;

    for (i = 0; i < POLL_LIMIT; i++) {
        got = scrape(series);
        if (got == want)
            return;
        nanosleep(&pause, NULL);
    }
    fail_msg("%s stayed %g, expected %g", series, got, want);
}

/* The "connected" member of department id in /api/v1/departments. */
static bool api_connected(const char *id)
{
    char *json = get("/api/v1/departments"), key[ONCE_MAX_NAME + 16];
    const char *row, *end, *flag;
    bool connected;

    snprintf(key, sizeof(key), "\"id\":\"%s\"", id);
    row = strstr(json, key);
    assert_non_null(row);
    while (row > json && *row != '{')
        row--;
    end = strchr(row, '}');
    flag = strstr(row, "\"connected\":");
    assert_true(flag != NULL && flag < end);
    connected = strncmp(flag + 12, "true", 4) == 0;
    free(json);
    return connected;
}

static unsigned free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void start(void)
{
    char listen[64];

    snprintf(listen, sizeof(listen), "--console-listen=127.0.0.1:%u",
             free_port());
    snprintf(base, sizeof(base), "http://%s", listen + 17);
    if (e2e_start(&broker, &market, listen, NULL) != 0)
        fail_msg("onced did not start");
}

static int setup(void **state)
{
    char path[PATH_MAX + 32];
    uint8_t *token;
    size_t len;

    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (e2e_init(&broker) != 0 ||
        e2e_dept_add(&broker, &market, "market-supervision") != 0 ||
        e2e_dept_add(&broker, &tax, "tax") != 0 ||
        e2e_dept_add(&broker, &flood, "flood") != 0 ||
        e2e_enterprise_type(&broker, LICENCE, &market, "name", &tax, PURPOSE,
                            "name") != 0 ||
        e2e_configure(&broker, "max_logged_refusals_per_department = %d\n"
                      "logged_refusals_window_seconds = 86400\n",
                      BUDGET) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/console.token", broker.home);
    token = e2e_slurp(path, &len);
    if (token == NULL || len < 64)
        return -1;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %.64s",
             (const char *)token);
    free(token);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    curl_global_cleanup();
    return 0;
}

static void publish(once_client *c, const char *subject, uint64_t version,
                    const char *name)
{
    once_record *r = NULL;
    once_error err;

    if (once_record_new(&r, LICENCE, subject, version, market.id, 0, 0,
                        &err) != 0 ||
        once_record_add_text(r, "name", name, &err) != 0 ||
        once_record_sign(r, &market.kp, &err) != 0 ||
        once_client_publish(c, r, &err) != 0)
        fail_msg("publish v%llu: %s", (unsigned long long)version,
                 err.message);
    once_record_free(r);
}

/* When Prometheus's promtool is installed, it accepts the exposition
 * text, saved as broker.dir/name. */
static void promtool_check(const char *text, const char *name)
{
    char path[PATH_MAX + 16], *said = NULL;

    if (access("/usr/bin/promtool", X_OK) != 0)
        return;
    snprintf(path, sizeof(path), "%s/%s", broker.dir, name);
    e2e_spit(path, (const uint8_t *)text, strlen(text));
    if (e2e_run(&said, "/usr/bin/promtool check metrics < %s", path) != 0)
        fail_msg("promtool check metrics: %s", said);
    free(said);
}

/* Makes the stopped broker's home one of a version that stored no counts
 * of records per type (registry.c). */
static void forget_counts(void)
{
    char db_path[PATH_MAX + 8];
    once_error err;
    MDB_txn *txn;
    store s;

    snprintf(db_path, sizeof(db_path), "%s/db", broker.home);
    assert_int_equal(store_open(&s, db_path, 0, &err), 0);
    assert_int_equal(store_begin(&s, 0, &txn, &err), 0);
    assert_int_equal(mdb_drop(txn, s.record_counts, 0), MDB_SUCCESS);
    assert_int_equal(store_commit(txn, &err), 0);
    store_close(&s);
}

static void test_live_series(void **state)
{
    char subject[SUBJECTS][19];
    once_client *c = NULL;
    once_record *out = NULL;
    once_error err;
    char *text;
    int i;

    (void)state;
    start();
    /* The probe's client that e2e_start pinged with is closed. */
    await("once_connected_departments", 0);
    /* No record yet: no row for the type. */
    assert_int_equal(scrape("once_records{type=\"" LICENCE "\"}"), -1);

    e2e_open_client(&broker, &market, &c);
    assert_int_equal(once_client_ping(c, &err), 0);
    await("once_connected_departments", 1);
    assert_true(api_connected(market.id));
    assert_false(api_connected(tax.id));

    for (i = 0; i < SUBJECTS; i++) {
        e2e_uscc(subject[i], 8100001u + (unsigned)i);
        publish(c, subject[i], 1, "Live Co.");
    }
    publish(c, subject[2], 2, "Live Co. renamed");
    assert_int_equal(scrape("once_records{type=\"" LICENCE "\"}"), SUBJECTS);
    assert_int_equal(scrape("once_record_versions"), SUBJECTS + 1);
    once_client_close(c);
    await("once_connected_departments", 0);
    assert_false(api_connected(market.id));

    /* flood has no grant: every request is NO_GRANT, logged while its
     * budget lasts, then QUOTA_EXCEEDED without a leaf. */
    e2e_open_client(&broker, &flood, &c);
    for (i = 0; i < BUDGET + OVER; i++) {
        assert_int_equal(once_client_request(c, LICENCE, subject[0], PURPOSE,
                                             "L-1", 0, &out, &err),
                         i < BUDGET ? -ONCE_ERR_NO_GRANT
                                    : -ONCE_ERR_QUOTA_EXCEEDED);
        assert_null(out);
    }
    once_client_close(c);
    text = get("/metrics");
    assert_int_equal(sample(text, "once_exchanges_total{kind=\"request\","
                                  "decision=\"refused\",code=\"NO_GRANT\"}"),
                     BUDGET);
    assert_int_equal(sample(text, "once_exchanges_unlogged_total"
                                  "{reason=\"refusal_budget\"}"), OVER);
    assert_int_equal(sample(text, "once_exchanges_unlogged_total"
                                  "{reason=\"pending_share\"}"), 0);
    assert_int_equal(sample(text, "once_exchanges_total{kind=\"publish\","
                                  "decision=\"granted\",code=\"NONE\"}"),
                     SUBJECTS + 1);
    /* Everything answered: nothing waits in any queue. */
    assert_int_equal(sample(text, "once_queue_depth{queue=\"workers\"}"), 0);
    assert_int_equal(sample(text, "once_queue_depth{queue=\"writer\"}"), 0);
    assert_int_equal(sample(text, "once_queue_depth{queue=\"answers\"}"), 0);
    /* Every answer measured: the publishes, the requests, the pings. */
    assert_true(sample(text, "once_request_duration_seconds_count") >=
                SUBJECTS + 1 + BUDGET + OVER);
    promtool_check(text, "metrics.txt");
    free(text);

    /* Seeded from the database at the next start. */
    assert_int_equal(e2e_stop(&broker), 0);
    start();
    assert_int_equal(scrape("once_records{type=\"" LICENCE "\"}"), SUBJECTS);
    assert_int_equal(scrape("once_exchanges_unlogged_total"
                            "{reason=\"refusal_budget\"}"), 0);
    e2e_open_client(&broker, &market, &c);
    e2e_uscc(subject[0], 8100001u + SUBJECTS);
    publish(c, subject[0], 1, "Live Co. the last");
    once_client_close(c);
    e2e_kill(&broker);
    start();
    assert_int_equal(scrape("once_records{type=\"" LICENCE "\"}"),
                     SUBJECTS + 1);
    assert_int_equal(e2e_stop(&broker), 0);
    forget_counts();
    start();
    assert_true(e2e_log_contains(&broker, "counted the records of each "
                                          "type once"));
    assert_int_equal(scrape("once_records{type=\"" LICENCE "\"}"),
                     SUBJECTS + 1);
    assert_int_equal(e2e_stop(&broker), 0);
}

/* Notices (PROTOCOL.md 4.9): a subscribe per scope, a publish and a
 * revoke, a pull, pushes, an acknowledgement and a cancel, each seen in
 * its series; the events every subscriber acknowledged are pruned. */
static void test_notice_series(void **state)
{
    char subject[19], series[160];
    once_client *c = NULL;
    once_record *r = NULL;
    once_notice got[4];
    uint64_t scanned_to;
    size_t count;
    once_error err;
    double acks;
    char *text;
    int i;

    (void)state;
    start();
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_TYPE, LICENCE, NULL,
                                           NULL, &err), 0);
    assert_int_equal(once_client_subscribe(c, ONCE_SCOPE_HELD, NULL, NULL,
                                           NULL, &err), 0);
    once_client_close(c);
    assert_int_equal(scrape("once_subscriptions{scope=\"type\"}"), 1);
    assert_int_equal(scrape("once_subscriptions{scope=\"subject\"}"), 0);
    assert_int_equal(scrape("once_subscriptions{scope=\"held\"}"), 1);

    e2e_uscc(subject, 8200001u);
    e2e_open_client(&broker, &market, &c);
    publish(c, subject, 1, "Notice Co.");
    if (once_record_new_revocation(&r, LICENCE, subject, 2, market.id,
                                   &err) != 0 ||
        once_record_sign(r, &market.kp, &err) != 0 ||
        once_client_revoke(c, r, &err) != 0)
        fail_msg("revoke: %s", err.message);
    once_record_free(r);
    once_client_close(c);
    assert_int_equal(scrape("once_notice_events_total"), 2);

    /* Pulled, then pushed after the registration notice_next makes. */
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_notices_pull(c, 0, got, 4, &count,
                                              &scanned_to, &err), 0);
    assert_int_equal(count, 2);
    snprintf(series, sizeof(series), "once_notices_delivered_total"
             "{department=\"%s\",via=\"pull\"}", tax.id);
    assert_int_equal(scrape(series), 2);
    for (i = 0; i < 2; i++)
        if (once_client_notice_next(c, 20000, &got[i], &err) != 0)
            fail_msg("notice_next: %s", err.message);
    snprintf(series, sizeof(series), "once_notices_delivered_total"
             "{department=\"%s\",via=\"push\"}", tax.id);
    await(series, 2);
    once_client_close(c);

    /* One acknowledgement more; then the first event can go (the tax
     * office is the only subscriber), the newest stays. */
    acks = scrape("once_notice_acks_total");
    assert_true(acks >= 1); /* notice_next's registration */
    e2e_open_client(&broker, &tax, &c);
    assert_int_equal(once_client_notice_ack(c, got[1].leaf_index, &err), 0);
    assert_int_equal(scrape("once_notice_acks_total"), acks + 1);
    await("once_notice_events_stored", 1);
    assert_true(scrape("once_notice_events_pruned_total") >= 1);
    assert_int_equal(once_client_unsubscribe(c, ONCE_SCOPE_TYPE, LICENCE,
                                             NULL, NULL, &err), 0);
    once_client_close(c);
    text = get("/metrics");
    assert_int_equal(sample(text, "once_subscriptions{scope=\"type\"}"), 0);
    assert_int_equal(sample(text, "once_subscriptions{scope=\"held\"}"), 1);
    promtool_check(text, "metrics-notices.txt");
    free(text);
    assert_int_equal(e2e_stop(&broker), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_series),
        cmocka_unit_test(test_notice_series),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
