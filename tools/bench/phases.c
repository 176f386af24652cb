/*
 * phases.c - the timed phases of a broker run, and the checks that make a
 * fast but wrong broker fail.
 *
 * Publishes: every record is built, signed by the issuer and wrapped in a
 * signed envelope first, then all are sent through pipelined issuer
 * connections, --publish-window in flight in all and at most 256 on each
 * (phases.h says why); publishes/s is over the time from the first send to
 * the last answer, and onced's CPU meanwhile gives its microseconds per
 * publish. The default window, 1024, is the most the broker lets one
 * department have in flight: while the writer commits one group, the
 * workers verify the next, so the commit's fsync and the signature checks
 * overlap instead of taking turns (with 256, on a disk whose fsync takes
 * milliseconds, the workers sat idle during each commit).
 *
 * Requests: every connection gets its request envelopes, each for a random
 * record, signed on --threads threads before the clock starts (client-side
 * signing on the broker's machine would take CPU from the broker and be
 * counted against it); enough for the broker to verify at the machine's
 * full verify rate for the whole run, and a quarter more. Then the drivers
 * keep --window requests in flight per connection for --seconds, and the
 * CPU time onced used meanwhile is read from /proc (and, with --console,
 * that of its console thread alone). With --warmup-seconds they do so
 * first for that long, every answer drained, and the counts start again:
 * a fresh onced maps each page of the database into its page tables the
 * first time it reads it, which at a large registry costs the first
 * minutes more than the steady state (PERFORMANCE.md, "Scale of the
 * registry").
 *
 * Every answer must be a Response: an Error is a bug in the bench's setup
 * or in the broker, and fails the run. One answer per connection is
 * decoded and its record verified against the issuer's key and checked to
 * hold exactly the granted fields. After the broker has stopped, the
 * database must hold every acknowledged record.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>
#include <zmq.h>

#include "bench.h"
#include "conn.h"
#include "envelope.h"
#include "home.h"
#include "once.pb-c.h"
#include "once/once.h"
#include "phases.h"
#include "record_internal.h"
#include "registry.h"
#include "report.h"
#include "scrape.h"
#include "store.h"

double process_cpu_seconds(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long utime, stime;
    FILE *f;
    size_t n;
    int field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces; the fields after it don't. */
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    p++;
    for (field = 3; field < 14 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, " %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double self_cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

cpu_mark cpu_mark_now(pid_t broker)
{
    return (cpu_mark){process_cpu_seconds(broker), self_cpu_seconds()};
}

void cpu_cores_since(const cpu_mark *m, pid_t broker, double wall,
                     double *broker_cores, double *bench_cores)
{
    *broker_cores = (process_cpu_seconds(broker) - m->broker) / wall;
    *bench_cores = (self_cpu_seconds() - m->bench) / wall;
}

int make_publish_body(const once_keypair *issuer, unsigned long i,
                      uint8_t **body, size_t *len)
{
    char subject[19], value[128];
    once_record *r = NULL;
    once_error err;
    int rc;

    make_subject(i, subject);
    if ((rc = once_record_new(&r, BENCH_TYPE, subject, 1, BENCH_ISSUER,
                              once_now_ms(), 0, &err)) < 0)
        goto out;
    for (size_t f = 0; f < BENCH_FIELDS && rc == 0; f++) {
        snprintf(value, sizeof(value), "%s of enterprise %lu",
                 bench_field_names[f], i);
        rc = once_record_add_text(r, bench_field_names[f], value, &err);
    }
    if (rc == 0)
        rc = once_record_sign(r, issuer, &err);
    if (rc == 0)
        rc = once_record_serialize(r, body, len, &err);
out:
    if (rc < 0)
        note("cannot build record %lu: %s", i, err.message);
    once_record_free(r);
    return rc;
}

typedef struct presign_job {
    conn *conns;
    size_t n;
    size_t per_conn;
    unsigned long records;
    uint64_t seed;
    int rc;
} presign_job;

static uint64_t xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Signs per_conn request envelopes, each for a random record, on every
 * connection of the job, in turns: envelope i of every connection, then
 * envelope i + 1. An envelope's sent_at is when it was signed, and the
 * broker keeps each answer for retries under a key that starts with it
 * (replies.c); the connections send their i-th envelopes at about the
 * same time, so signed in turns their keys fall near each other, as the
 * keys of clients whose clocks agree and who sign as they send. Signed
 * one connection after the other, each connection's keys were a slice of
 * their own, and every group commit wrote a page of `replies` for each
 * connection (about two thirds of the pages it wrote). */
static void *presign_requests(void *arg)
{
    presign_job *j = arg;
    uint64_t *rng = calloc(j->n, sizeof(*rng));

    if (rng == NULL) {
        j->rc = -1;
        return NULL;
    }
    for (size_t k = 0; k < j->n; k++) {
        rng[k] = j->seed + k * 0x9e3779b97f4a7c15ull + 1;
        if (conn_renew(&j->conns[k], j->per_conn, j->per_conn * 200) < 0)
            j->rc = -1;
    }
    for (size_t i = 0; i < j->per_conn && j->rc == 0; i++) {
        for (size_t k = 0; k < j->n && j->rc == 0; k++) {
            conn *c = &j->conns[k];
            Once__Request r = ONCE__REQUEST__INIT;
            char subject[19], case_id[ONCE_MAX_CASE_ID];
            uint8_t body[256];
            size_t len;

            make_subject(xorshift64(&rng[k]) % j->records, subject);
            snprintf(case_id, sizeof(case_id), "BENCH-%s-%" PRIu64, c->dept,
                     c->seq_base + i);
            r.type = (char *)BENCH_TYPE;
            r.subject = subject;
            r.purpose = (char *)BENCH_PURPOSE;
            r.case_id = case_id;
            len = once__request__get_packed_size(&r);
            if (len > sizeof(body)) {
                j->rc = -1;
                break;
            }
            once__request__pack(&r, body);
            if (conn_add_envelope(c, ONCE__KIND__KIND_REQUEST, body, len) < 0)
                j->rc = -1;
        }
    }
    free(rng);
    return NULL;
}

/* How many connections carry --publish-window: ceil(window / 256). */
static size_t publish_connections(void)
{
    return (opt.publish_window + PUBLISH_CONNECTION_WINDOW - 1) /
           PUBLISH_CONNECTION_WINDOW;
}

int run_publishes(bench_home *h, void *ctx, results *r)
{
    size_t n_conn = publish_connections(), k;
    unsigned long todo, i;
    conn issuers[PUBLISH_MAX_CONNECTIONS];
    uint64_t start, last = 0, errors = 0;
    cpu_mark cpu0;
    int rc = -1;

    /* Records 0..h->stored-1 are in the database already (--preload,
     * --reuse). */
    if (h->stored >= opt.records)
        return 0;
    memset(issuers, 0, sizeof(issuers));
    todo = opt.records - h->stored;
    if (n_conn > todo)
        n_conn = todo;
    r->publish_connections = n_conn;
    for (k = 0; k < n_conn; k++) {
        conn *c = &issuers[k];
        size_t share = todo / n_conn + (k < todo % n_conn);

        snprintf(c->dept, sizeof(c->dept), "%s", BENCH_ISSUER);
        c->key = h->issuer;
        do
            randombytes_buf(&c->session, sizeof(c->session));
        while (c->session == 0);
        if (conn_reserve(c, share, share * 900) < 0)
            goto out;
    }
    note("signing %lu records", todo);
    /* Record i goes out on connection i mod n_conn. */
    for (i = h->stored; i < opt.records; i++) {
        uint8_t *body;
        size_t len;

        if (make_publish_body(&h->issuer, i, &body, &len) < 0)
            goto out;
        rc = conn_add_envelope(&issuers[(i - h->stored) % n_conn],
                               ONCE__KIND__KIND_PUBLISH, body, len);
        free(body);
        if (rc < 0)
            goto out;
    }
    rc = -1;
    for (k = 0; k < n_conn; k++)
        if (conn_connect(&issuers[k], ctx, h->endpoint,
                         h->broker.public_key) < 0)
            goto out;
    note("publishing %lu records on %zu connections", todo, n_conn);
    cpu0 = cpu_mark_now(h->pid);
    start = monotonic_ns();
    if (run_drivers(issuers, n_conn, 1,
                    (opt.publish_window + n_conn - 1) / n_conn, 0) < 0)
        goto out;
    last = monotonic_ns();
    r->publish_seconds = (double)(last - start) / 1e9;
    cpu_cores_since(&cpu0, h->pid, r->publish_seconds,
                    &r->publish_broker_cpu_cores, &r->publish_bench_cpu_cores);
    for (k = 0; k < n_conn; k++) {
        r->publishes_per_s += (double)issuers[k].ok;
        errors += issuers[k].errors;
        if (issuers[k].errors > 0)
            note("%" PRIu64 " publishes refused; first: %s",
                 issuers[k].errors, issuers[k].first_error);
    }
    r->publishes_per_s /= r->publish_seconds;
    r->errors += errors;
    rc = errors > 0 ? -1 : 0;
out:
    for (k = 0; k < n_conn; k++)
        conn_free(&issuers[k]);   /* wipes its copy of the issuer's key */
    return rc;
}

/* Decodes one granted answer and checks it as a requester would: the
 * issuer's signature, the digests, and exactly the granted fields. */
int check_sample(const conn *c, const uint8_t issuer_pk[32])
{
    Once__Response *resp;
    once_record *rec = NULL;
    once_error err = {0};
    int rc = -1;

    if (c->sample == NULL)
        return 0;
    resp = once__response__unpack(NULL, c->sample_len, c->sample);
    if (resp == NULL || resp->record == NULL) {
        note("%s: a Response without a record", c->dept);
        goto out;
    }
    if (record_from_parts(&rec, resp->record, resp->disclosures,
                          resp->n_disclosures, &err) < 0 ||
        once_record_verify(rec, issuer_pk, &err) < 0) {
        note("%s: the answer's record does not verify: %s", c->dept,
             err.message);
        goto out;
    }
    if (once_record_field_count(rec) != BENCH_FIELDS ||
        once_record_disclosure_count(rec) != BENCH_GRANTED) {
        note("%s: the answer discloses %zu of %zu fields; the grant allows "
             "%d", c->dept, once_record_disclosure_count(rec),
             once_record_field_count(rec), BENCH_GRANTED);
        goto out;
    }
    for (size_t f = 0; f < BENCH_GRANTED; f++) {
        const uint8_t *v;
        size_t len;

        if (once_record_field_value(rec, bench_field_names[f], &v, &len) < 0) {
            note("%s: granted field %s not disclosed", c->dept,
                 bench_field_names[f]);
            goto out;
        }
    }
    rc = 0;
out:
    once_record_free(rec);
    if (resp != NULL)
        once__response__free_unpacked(resp, NULL);
    return rc;
}

int presign(conn *clients, size_t n, size_t per_conn)
{
    presign_job jobs[64];
    pthread_t tid[64];
    size_t threads = opt.threads > 64 ? 64 : opt.threads, per, t, started = 0;
    int rc = 0;

    per = (n + threads - 1) / threads;
    for (t = 0; t < threads && t * per < n; t++) {
        size_t first = t * per;

        jobs[t] = (presign_job){clients + first,
                                n - first < per ? n - first : per,
                                per_conn, opt.records,
                                0x5eed0000 + t + clients[first].seq_base, 0};
        if (pthread_create(&tid[t], NULL, presign_requests, &jobs[t]) != 0)
            break;
        started++;
    }
    for (t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
        if (jobs[t].rc < 0)
            rc = -1;
    }
    if (rc < 0)
        note("cannot sign the request envelopes (out of memory?)");
    if (started == 0 || started * per < n)
        rc = -1;
    return rc;
}

int run_requests(bench_home *h, void *ctx, conn *clients, results *r)
{
    size_t per_conn, total_latency = 0, i;
    double budget, cpu0_console, wall;
    cpu_mark cpu0;
    uint64_t start, deadline, presign_start;
    uint32_t *all = NULL;
    int rc = -1;

    /* Enough envelopes for the broker to verify at the machine's full
     * verify rate for the whole run, and a quarter more: it cannot go
     * faster than that. */
    budget = 1.25 * r->verify_per_core * r->cores *
             (opt.seconds + opt.warmup_seconds);
    if (budget > (double)opt.max_presigned)
        budget = (double)opt.max_presigned;
    per_conn = (size_t)(budget / (double)opt.clients) + 1;
    if (per_conn < opt.window * 2)
        per_conn = opt.window * 2;
    note("signing %zu request envelopes on %lu threads", per_conn * opt.clients,
         opt.threads);
    presign_start = monotonic_ns();
    if (presign(clients, opt.clients, per_conn) < 0)
        return -1;
    r->presign_seconds = (double)(monotonic_ns() - presign_start) / 1e9;
    r->presigned = per_conn * opt.clients;

    /* A connection stays open for the next run (idle.c runs several). */
    for (i = 0; i < opt.clients; i++) {
        if (clients[i].sock == NULL &&
            conn_connect(&clients[i], ctx, h->endpoint,
                         h->broker.public_key) < 0) {
            note("cannot connect client %zu: %s", i, zmq_strerror(errno));
            return -1;
        }
    }
    if (opt.warmup_seconds > 0) {
        note("warming up: %lu clients for %.1f s, not counted", opt.clients,
             opt.warmup_seconds);
        if (run_drivers(clients, opt.clients, opt.threads, opt.window,
                        monotonic_ns() + seconds_ns(opt.warmup_seconds)) < 0)
            return -1;
        /* Errors stay counted: any fails the run. */
        for (i = 0; i < opt.clients; i++) {
            clients[i].ok = clients[i].ok_in_time = 0;
            clients[i].n_latency = 0;
        }
    }
    note("running %lu clients for %.1f s", opt.clients, opt.seconds);
    cpu0 = cpu_mark_now(h->pid);
    cpu0_console = console_thread_cpu_seconds(h->pid);
    start = monotonic_ns();
    deadline = start + seconds_ns(opt.seconds);
    if (run_drivers(clients, opt.clients, opt.threads, opt.window, deadline) < 0)
        return -1;
    wall = (double)(monotonic_ns() - start) / 1e9;
    cpu_cores_since(&cpu0, h->pid, wall, &r->broker_cpu_cores,
                    &r->bench_cpu_cores);
    r->console_cpu_cores = cpu0_console < 0 ? 0 :
        (console_thread_cpu_seconds(h->pid) - cpu0_console) / wall;

    for (i = 0; i < opt.clients; i++) {
        conn *c = &clients[i];

        r->requests_ok += c->ok_in_time;
        r->requests_total += c->ok;
        r->errors += c->errors;
        total_latency += c->n_latency;
        if (c->next == c->n_env)
            r->presigned_exhausted = true;
        if (c->errors > 0)
            note("%s: %" PRIu64 " errors; first: %s", c->dept, c->errors,
                 c->first_error);
    }
    /* Throughput counts the answers received by the deadline, over the
     * planned duration; when the pre-signed envelopes ran out early, over
     * the time to the last answer. */
    r->request_seconds = r->presigned_exhausted ? wall : opt.seconds;
    r->requests_per_s = (double)r->requests_ok / r->request_seconds;
    all = malloc((total_latency + 1) * sizeof(*all));
    if (all == NULL)
        return -1;
    total_latency = 0;
    for (i = 0; i < opt.clients; i++) {
        memcpy(all + total_latency, clients[i].latency_us,
               clients[i].n_latency * sizeof(*all));
        total_latency += clients[i].n_latency;
    }
    report_latencies(r, all, total_latency);
    free(all);

    rc = r->errors > 0 ? -1 : 0;
    for (i = 0; i < opt.clients && rc == 0; i++)
        rc = check_sample(&clients[i], h->issuer.public_key);
    return rc;
}

/* After the broker stopped: every acknowledged record is in the database. */
int check_durable(const bench_home *h, unsigned long expected)
{
    char db[PATH_MAX + 16];
    size_t records = 0, versions = 0;
    once_error err = {0};
    MDB_txn *txn;
    store s;
    int rc;

    if (path_join(db, sizeof(db), h->home, "db") < 0 ||
        store_open(&s, db, (size_t)4096 << 20, &err) < 0) {
        note("cannot reopen the database: %s", err.message);
        return -1;
    }
    rc = store_begin(&s, 1, &txn, &err);
    if (rc == 0) {
        rc = registry_count(txn, &s, &records, &versions, &err);
        mdb_txn_abort(txn);
    }
    store_close(&s);
    if (rc < 0 || records != expected) {
        note("the database holds %zu records after the run, expected %lu%s%s",
             records, expected, rc < 0 ? ": " : "", rc < 0 ? err.message : "");
        return -1;
    }
    return 0;
}
