/*
 * harness.c - end-to-end test harness: a real onced in a temp broker home.
 *
 * The programs under test come from the build through the environment
 * (tests/meson.build sets ONCED and ONCECTL), so the tests drive exactly
 * the binaries that would be installed, the way an operator would:
 * `oncectl init`, `oncectl dept add`, `onced --home`. Readiness is "the
 * broker answers a signed ping", not "the socket file exists": that proves
 * the ZAP handler, the workers and the database are all up.
 *
 * Waiting has generous bounds (a loaded CI machine running sanitizers is
 * slow) and no test asserts on how long anything took.
 *
 * Starting, probing and stopping the child processes is
 * tools/bench/onced_process.c, shared with once-bench, so that both run
 * the broker by the same rules.
 *
 * The small helpers at the end (running a command, reading and writing a
 * whole file, opening a client) fail the calling cmocka test themselves:
 * every test program needed them the same way, and a test has nothing to
 * do but fail when its own fixture files cannot be read.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <zmq.h>

#include "harness.h"
#include "onced_process.h"
#include "socket_monitor.h"

#define MAX_ARGS 32
/* How long onced may take to answer its first ping (probing every
 * PROBE_TIMEOUT_MS), and to exit after SIGTERM before it is killed. */
#define READY_SECONDS 60.0
#define PROBE_TIMEOUT_MS 250
#define STOP_SECONDS 120.0

static const char *program(const char *var)
{
    const char *p = getenv(var);

    if (p == NULL || p[0] == '\0') {
        fprintf(stderr, "e2e: %s is not set (run the tests with meson "
                "test)\n", var);
        exit(2);
    }
    return p;
}

int e2e_init(e2e_broker *b)
{
    const char *base = getenv("TMPDIR");
    char log[PATH_MAX + 16], name[] = "e2e-broker";
    char *argv[] = { (char *)program("ONCECTL"), "init", b->home, "--listen",
                     b->endpoint, "--name", name, NULL };
    char pub[PATH_MAX + 16];
    once_error err;

    memset(b, 0, sizeof(*b));
    if (once_init() < 0)
        return -1;
    if (base == NULL || base[0] == '\0' ||
        strlen(base) > E2E_DIR_MAX - sizeof("/once-e2e-XXXXXX"))
        base = "/tmp";
    snprintf(b->dir, sizeof(b->dir), "%s/once-e2e-XXXXXX", base);
    if (mkdtemp(b->dir) == NULL) {
        fprintf(stderr, "e2e: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(b->home, sizeof(b->home), "%s/home", b->dir);
    snprintf(b->endpoint, sizeof(b->endpoint), "ipc://%s/broker.sock",
             b->dir);
    snprintf(b->log_path, sizeof(b->log_path), "%s/onced.log", b->dir);
    snprintf(log, sizeof(log), "%s/oncectl.log", b->dir);
    if (child_wait(child_spawn(argv, log)) != 0) {
        log_file_print(log, "oncectl", 0);
        return -1;
    }
    snprintf(pub, sizeof(pub), "%s/broker.pub", b->home);
    if (once_public_key_load(b->broker_pk, pub, &err) < 0) {
        fprintf(stderr, "e2e: %s\n", err.message);
        return -1;
    }
    return 0;
}

static void remove_tree(const char *path)
{
    char *argv[] = { "/bin/rm", "-rf", (char *)path, NULL };

    child_wait(child_spawn(argv, "/dev/null"));
}

void e2e_cleanup(e2e_broker *b)
{
    if (b->pid > 0)
        e2e_kill(b);
    if (b->dir[0] != '\0' && getenv("E2E_KEEP") == NULL)
        remove_tree(b->dir);
}

int e2e_oncectl(e2e_broker *b, ...)
{
    char *argv[MAX_ARGS];
    char log[PATH_MAX + 16];
    va_list ap;
    int n = 0, status;
    char *arg;

    argv[n++] = (char *)program("ONCECTL");
    argv[n++] = "--home";
    argv[n++] = b->home;
    va_start(ap, b);
    while ((arg = va_arg(ap, char *)) != NULL && n < MAX_ARGS - 1)
        argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    snprintf(log, sizeof(log), "%s/oncectl.log", b->dir);
    status = child_wait(child_spawn(argv, log));
    if (status != 0)
        log_file_print(log, "oncectl", 0);
    return status;
}

int e2e_dept_keys(e2e_broker *b, e2e_dept *d, const char *id)
{
    char secret[PATH_MAX + 80];
    once_error err;

    memset(d, 0, sizeof(*d));
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(secret, sizeof(secret), "%s/%s.key", b->dir, id);
    snprintf(d->pub_path, sizeof(d->pub_path), "%s/%s.key.pub", b->dir, id);
    if (once_keypair_generate(&d->kp) < 0 ||
        once_keypair_save(&d->kp, secret, d->pub_path, &err) < 0) {
        fprintf(stderr, "e2e: cannot make keys for %s\n", id);
        return -1;
    }
    return 0;
}

int e2e_dept_add(e2e_broker *b, e2e_dept *d, const char *id)
{
    if (e2e_dept_keys(b, d, id) < 0)
        return -1;
    return e2e_oncectl(b, "dept", "add", d->id, "--key", d->pub_path, NULL);
}

int e2e_client(e2e_broker *b, const e2e_dept *d, once_client **out,
               once_error *err)
{
    once_client_options opt = { .timeout_ms = 15000, .retries = 1 };

    return once_client_open(out, b->endpoint, d->id, &d->kp, b->broker_pk,
                            &opt, err);
}

int e2e_start(e2e_broker *b, const e2e_dept *probe, ...)
{
    char *argv[MAX_ARGS];
    once_error err;
    va_list ap;
    int n = 0;
    char *arg;

    argv[n++] = (char *)program("ONCED");
    argv[n++] = "--home";
    argv[n++] = b->home;
    /* No console: tests run in parallel and would all bind its default
     * port. A test of the console gives its own --console-listen after. */
    argv[n++] = "--console-listen=";
    va_start(ap, probe);
    while ((arg = va_arg(ap, char *)) != NULL && n < MAX_ARGS - 1)
        argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    b->pid = child_spawn(argv, b->log_path);
    if (b->pid < 0) {
        b->pid = 0;
        return -1;
    }
    if (onced_wait_ready(&b->pid, b->endpoint, probe->id, &probe->kp,
                         b->broker_pk, PROBE_TIMEOUT_MS, READY_SECONDS,
                         &err) < 0) {
        fprintf(stderr, "e2e: onced did not come up: %s\n", err.message);
        e2e_dump_log(b);
        return -1;
    }
    return 0;
}

int e2e_stop(e2e_broker *b)
{
    once_error err;
    int status = onced_stop(&b->pid, STOP_SECONDS, &err);

    if (status != 0) {
        fprintf(stderr, "e2e: %s\n", err.message);
        e2e_dump_log(b);
    }
    return status;
}

void e2e_kill(e2e_broker *b)
{
    onced_kill(&b->pid);
}

int e2e_enterprise_type(e2e_broker *b, const char *type,
                        const e2e_dept *issuer, const char *fields,
                        const e2e_dept *requester, const char *purpose,
                        const char *granted)
{
    if (e2e_oncectl(b, "type", "add", type, "--issuer", issuer->id,
                    "--subject", "enterprise", "--fields", fields,
                    NULL) != 0 ||
        e2e_oncectl(b, "grant", "add", "--requester", requester->id, "--type",
                    type, "--purpose", purpose, "--fields", granted,
                    NULL) != 0)
        return -1;
    return 0;
}

int e2e_configure(e2e_broker *b, const char *fmt, ...)
{
    char path[PATH_MAX + 16];
    va_list ap;
    FILE *conf;
    int rc;

    snprintf(path, sizeof(path), "%s/once.conf", b->home);
    conf = fopen(path, "a");
    if (conf == NULL)
        return -1;
    va_start(ap, fmt);
    rc = vfprintf(conf, fmt, ap);
    va_end(ap);
    if (fclose(conf) != 0 || rc < 0)
        return -1;
    return 0;
}

int e2e_publish_name(e2e_broker *b, const e2e_dept *issuer, const char *type,
                     const char *subject, const char *name, once_error *err)
{
    once_client *c = NULL;
    once_record *r = NULL;
    int rc = -1;

    if (e2e_client(b, issuer, &c, err) == 0 &&
        once_record_new(&r, type, subject, 1, issuer->id, 0, 0, err) == 0 &&
        once_record_add_text(r, "name", name, err) == 0 &&
        once_record_sign(r, &issuer->kp, err) == 0 &&
        once_client_publish(c, r, err) == 0)
        rc = 0;
    once_record_free(r);
    once_client_close(c);
    return rc;
}

int e2e_revoke(e2e_broker *b, const e2e_dept *issuer, const char *type,
               const char *subject, uint64_t version, uint64_t *leaf,
               once_error *err)
{
    once_client *c = NULL;
    once_record *r = NULL;
    once_receipt receipt;
    int rc = -1;

    memset(&receipt, 0, sizeof(receipt));
    if (e2e_client(b, issuer, &c, err) == 0 &&
        once_record_new_revocation(&r, type, subject, version, issuer->id,
                                   err) == 0 &&
        once_record_sign(r, &issuer->kp, err) == 0 &&
        once_client_revoke_ex(c, r, 0, &receipt, err) == 0) {
        if (receipt.logged) {
            *leaf = receipt.leaf_index;
            rc = 0;
        } else {
            once_error_set(err, ONCE_ERR_INTERNAL, "the revocation's "
                           "receipt names no leaf");
        }
    }
    once_receipt_clear(&receipt);
    once_record_free(r);
    once_client_close(c);
    return rc;
}

void e2e_dump_log(const e2e_broker *b)
{
    log_file_print(b->log_path, "onced log", 0);
}

bool e2e_log_contains(const e2e_broker *b, const char *text)
{
    return e2e_file_contains(b->log_path, text);
}

bool e2e_file_contains(const char *path, const char *text)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

void e2e_open_client(e2e_broker *b, const e2e_dept *d, once_client **c)
{
    once_error err;

    if (e2e_client(b, d, c, &err) != 0)
        fail_msg("client for %s: %s", d->id, err.message);
}

void e2e_must_publish_name(e2e_broker *b, const e2e_dept *issuer,
                           const char *type, const char *subject,
                           const char *name)
{
    once_error err;

    if (e2e_publish_name(b, issuer, type, subject, name, &err) < 0)
        fail_msg("publish: %s", err.message);
}

size_t e2e_pull_notices(once_client *c, uint64_t after, once_notice *out,
                        size_t cap)
{
    size_t total = 0, count;
    uint64_t scanned_to;
    once_error err;

    for (;;) {
        if (once_client_notices_pull(c, after, out + total, cap - total,
                                     &count, &scanned_to, &err) < 0)
            fail_msg("pull: %s", err.message);
        total += count;
        if (scanned_to == after || total == cap)
            return total;
        after = scanned_to;
    }
}

int e2e_run(char **out, const char *fmt, ...)
{
    char cmd[2 * PATH_MAX + 256];
    size_t len = 0, cap = 4096;
    va_list ap;
    FILE *p;
    int status;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
    *out = malloc(cap);
    assert_non_null(*out);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (;;) {
        size_t n;

        if (cap - len < 1024) {
            cap *= 2;
            *out = realloc(*out, cap);
            assert_non_null(*out);
        }
        n = fread(*out + len, 1, cap - len - 1, p);
        if (n == 0)
            break;
        len += n;
    }
    (*out)[len] = '\0';
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

uint8_t *e2e_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

void e2e_spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

void e2e_uscc(char out[19], unsigned n)
{
    /* 9: enterprise, 1: company; 110108: a Beijing district; then a
     * 9-character organisation code from n. */
    snprintf(out, 19, "91110108%09u", n % 1000000000u);
    once_uscc_check_char(out, &out[17]);
    out[18] = '\0';
}

void e2e_resident_id(char out[19], unsigned n)
{
    /* Region 1101xx, born 1985-06-15, sequence from n. */
    snprintf(out, 19, "1101%02u19850615%03u", (n / 1000) % 100, n % 1000);
    once_resident_id_check_char(out, &out[17]);
    out[18] = '\0';
}

/* ---- raw sockets ----------------------------------------------------- */

int e2e_raw_open(e2e_raw *r, const e2e_broker *b, const once_keypair *kp)
{
    char server[41], pub[41], secret[41], address[64];
    int zero = 0;

    memset(r, 0, sizeof(*r));
    if (once_curve_public_z85(server, b->broker_pk) < 0 ||
        once_curve_public_z85(pub, kp->public_key) < 0 ||
        once_curve_secret_z85(secret, kp) < 0)
        return -1;
    r->ctx = zmq_ctx_new();
    r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
    if (r->sock == NULL ||
        zmq_setsockopt(r->sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
        zmq_setsockopt(r->sock, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
        zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, secret, 40) != 0 ||
        zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0)
        return -1;
    snprintf(address, sizeof(address), "inproc://e2e-monitor-%p", (void *)r);
    if (zmq_socket_monitor(r->sock, address,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_DISCONNECTED) != 0)
        return -1;
    r->monitor = zmq_socket(r->ctx, ZMQ_PAIR);
    if (r->monitor == NULL || zmq_connect(r->monitor, address) != 0 ||
        zmq_setsockopt(r->monitor, ZMQ_LINGER, &zero, sizeof(zero)) != 0)
        return -1;
    return zmq_connect(r->sock, b->endpoint) == 0 ? 0 : -1;
}

void e2e_raw_close(e2e_raw *r)
{
    if (r->sock != NULL) {
        zmq_socket_monitor(r->sock, NULL, 0);
        zmq_close(r->sock);
    }
    if (r->monitor != NULL)
        zmq_close(r->monitor);
    if (r->ctx != NULL)
        zmq_ctx_term(r->ctx);
    memset(r, 0, sizeof(*r));
}

int e2e_raw_send(e2e_raw *r, const void *data, size_t len)
{
    return zmq_send(r->sock, data, len, 0) == (int)len ? 0 : -1;
}

int e2e_raw_recv(e2e_raw *r, int timeout_ms, Once__Envelope **out)
{
    zmq_pollitem_t item = { r->sock, 0, ZMQ_POLLIN, 0 };
    zmq_msg_t msg;
    int rc;

    *out = NULL;
    rc = zmq_poll(&item, 1, timeout_ms);
    if (rc <= 0)
        return 0;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, r->sock, 0) < 0) {
        zmq_msg_close(&msg);
        return -1;
    }
    *out = once__envelope__unpack(NULL, zmq_msg_size(&msg),
                                  zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    return *out != NULL ? 1 : -1;
}

int e2e_raw_wait_event(e2e_raw *r, int mask, int timeout_ms)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        zmq_pollitem_t item = { r->monitor, 0, ZMQ_POLLIN, 0 };
        long elapsed;
        int event;

        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                  (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms ||
            zmq_poll(&item, 1, timeout_ms - elapsed) <= 0)
            return 0;
        event = socket_monitor_event(r->monitor, 0);
        if (event == 0)
            return 0;
        if (event & mask)
            return event;
    }
}

int e2e_envelope(uint8_t **out, size_t *len, const char *sender,
                 uint64_t session, uint64_t seq, uint64_t sent_at, int kind,
                 const uint8_t *body, size_t body_len,
                 const once_keypair *signer)
{
    Once__Envelope e = ONCE__ENVELOPE__INIT;
    uint8_t sig[ONCE_SIGNATURE_BYTES];

    e.version = ENVELOPE_VERSION;
    e.sender = (char *)sender;
    e.session = session;
    e.seq = seq;
    e.sent_at = sent_at;
    e.kind = (Once__Kind)kind;
    e.body.data = (uint8_t *)body;
    e.body.len = body_len;
    if (envelope_sign(&e, signer, sig) < 0)
        return -1;
    return envelope_pack(&e, out, len);
}

int e2e_reply_code(const Once__Envelope *reply)
{
    Once__Error *e;
    int code;

    if (reply->kind == ONCE__KIND__KIND_RESPONSE)
        return 0;
    if (reply->kind != ONCE__KIND__KIND_ERROR)
        return -1;
    e = once__error__unpack(NULL, reply->body.len, reply->body.data);
    if (e == NULL)
        return -1;
    code = (int)e->code;
    once__error__free_unpacked(e, NULL);
    return code;
}

int e2e_request_body(uint8_t **out, size_t *len, const char *type,
                     const char *subject, const char *purpose,
                     const char *case_id, uint64_t version)
{
    Once__Request q = ONCE__REQUEST__INIT;

    q.type = (char *)type;
    q.subject = (char *)subject;
    q.purpose = (char *)purpose;
    q.case_id = (char *)case_id;
    q.version = version;
    *len = once__request__get_packed_size(&q);
    *out = malloc(*len > 0 ? *len : 1);
    if (*out == NULL)
        return -1;
    once__request__pack(&q, *out);
    return 0;
}

uint64_t e2e_session(void)
{
    uint64_t s;

    do
        randombytes_buf(&s, sizeof(s));
    while (s == 0);
    return s;
}
