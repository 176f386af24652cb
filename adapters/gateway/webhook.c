/*
 * webhook.c - notices POSTed to the department's URL (docs/ADAPTERS.md,
 * "Webhooks"; the broker's side is docs/PROTOCOL.md 4.9).
 *
 * With notice_webhook = URL the gateway keeps one subscriber connection of
 * its own (pool_open_extra), takes the department's notices as the broker
 * pushes them (once_client_notice_next) and POSTs each, one at a time and
 * in leaf order, as
 *
 *     {"notices": [{"leaf_index": 42, "type": "business-licence",
 *                   "subject": "...", "version": 2, "event": "revoked"}]}
 *
 * with the header
 *
 *     Once-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256>
 *
 * where the HMAC (libsodium's crypto_auth_hmacsha256, keyed with the bytes
 * of notice_webhook_secret_file, a trailing newline removed) is over the
 * ASCII of t, a ".", and the body exactly as sent. A receiver recomputes
 * it, compares in constant time and refuses an old t (replays).
 *
 * Acknowledgement. Only a 2xx answer acknowledges the notice to the broker
 * (once_client_notice_ack: the department's cursor, so a department
 * should have one acknowledging consumer: this webhook, or a spool's
 * notices/, or a libonce subscriber). Anything else, or no answer within
 * 10 s, is retried after a delay that starts at notice_webhook_backoff_ms
 * (1 s) and doubles up to 5 min; after notice_webhook_attempts (10: about
 * 8.5 min) the notice is put aside, appended as one JSON line to
 * webhook-dead-letters.jsonl in the state directory (0600: it holds a
 * subject), and acknowledged, so one bad notice does not stop the rest.
 * Later notices wait meanwhile: order is kept. A gateway stopped during
 * the retries does not acknowledge; the broker delivers the notice again
 * after the restart (at least once: receivers key on leaf_index).
 *
 * The answer's body is not read (discarded unparsed); redirects are not
 * followed; only http and https URLs are taken. /metrics has
 * once_gateway_webhook_deliveries_total{result="delivered"|"failed"},
 * once_gateway_webhook_pending and once_gateway_webhook_dead_letters_total.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "gateway.h"

#define WEBHOOK_TIMEOUT_MS 10000
#define WEBHOOK_MAX_BACKOFF_MS (5u * 60u * 1000u)
#define WEBHOOK_MAX_SECRET 1024
#define WEBHOOK_MIN_SECRET 16
#define DEAD_LETTERS "webhook-dead-letters.jsonl"

static struct {
    gateway *gw;
    pthread_t thread;
    bool running;
    _Atomic bool stopping;
    once_client *client;
    CURL *curl;
    uint8_t secret[WEBHOOK_MAX_SECRET];
    size_t secret_len;
    _Atomic uint64_t delivered, failed, dead, pending;
} wh;

static void nap(uint64_t ms)
{
    struct timespec ts = { 0, 100 * 1000000L };

    while (ms > 0 && !atomic_load(&wh.stopping)) {
        nanosleep(&ts, NULL);
        ms = ms > 100 ? ms - 100 : 0;
    }
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* Reads the secret: a regular file closed to group and others. */
static int load_secret(const char *path, once_error *err)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open "
                              "notice_webhook_secret_file %s: %s", path,
                              strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (st.st_mode & 077) != 0) {
        close(fd);
        return once_error_set(err, ONCE_ERR_BAD_KEY_FILE, "%s must be a "
                              "regular file that group and others cannot "
                              "read (chmod 600)", path);
    }
    n = read(fd, wh.secret, sizeof(wh.secret));
    close(fd);
    while (n > 0 && (wh.secret[n - 1] == '\n' || wh.secret[n - 1] == '\r'))
        n--;
    if (n < WEBHOOK_MIN_SECRET || (size_t)n >= sizeof(wh.secret)) {
        sodium_memzero(wh.secret, sizeof(wh.secret));
        return once_error_set(err, ONCE_ERR_BAD_KEY_FILE, "%s must hold "
                              "%d to %d bytes", path, WEBHOOK_MIN_SECRET,
                              WEBHOOK_MAX_SECRET - 1);
    }
    wh.secret_len = (size_t)n;
    return 0;
}

static char *notice_body(const once_notice *n)
{
    json_t *doc = json_pack(
        "{s:[{s:I, s:s, s:s, s:I, s:s}]}", "notices", "leaf_index",
        (json_int_t)n->leaf_index, "type", n->type, "subject", n->subject,
        "version", (json_int_t)n->version, "event",
        n->event == ONCE_NOTICE_REVOKED ? "revoked" : "new_version");
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

    json_decref(doc);
    return text;
}

/* "Once-Signature: t=T,v1=HEX" of body at time t into out. */
static void sign(const char *body, long long t, char *out, size_t cap)
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char stamp[32], hex[2 * sizeof(mac) + 1];

    snprintf(stamp, sizeof(stamp), "%lld.", t);
    crypto_auth_hmacsha256_init(&st, wh.secret, wh.secret_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)stamp,
                                  strlen(stamp));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)body, strlen(body));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(out, cap, "Once-Signature: t=%lld,v1=%s", t, hex);
    sodium_memzero(&st, sizeof(st));
}

/* One POST: true for a 2xx answer. */
static bool post(const char *body)
{
    struct curl_slist *headers = NULL;
    char signature[128];
    long status = 0;
    CURLcode rc;

    sign(body, (long long)time(NULL), signature, sizeof(signature));
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, signature);
    if (headers == NULL)
        return false;
    curl_easy_setopt(wh.curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(wh.curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(wh.curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    rc = curl_easy_perform(wh.curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(wh.curl, CURLINFO_RESPONSE_CODE, &status);
    else
        adapter_log("warn", "webhook: %s", curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    return status >= 200 && status < 300;
}

/* Appends body as one line to the dead letters: 0 or -code. */
static int put_aside(const char *body, once_error *err)
{
    char path[PATH_MAX + 64];
    struct stat st;
    size_t len = strlen(body);
    int fd, ok;

    snprintf(path, sizeof(path), "%s/%s", wh.gw->cfg.base.state_dir,
             DEAD_LETTERS);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open %s: %s", path,
                              strerror(errno));
    ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
         (st.st_mode & 077) == 0 && write(fd, body, len) == (ssize_t)len &&
         write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return once_error_set(err, ONCE_ERR_IO, "cannot append to %s (a "
                              "0600 regular file)", path);
    return 0;
}

/* Delivers n until a 2xx or the attempts are spent: true when n is done
 * with (delivered or put aside), false when stopping. */
static bool deliver(const once_notice *n)
{
    const gateway_config *cfg = &wh.gw->cfg;
    uint64_t delay = cfg->webhook_backoff_ms;
    char *body = notice_body(n);
    once_error err;
    unsigned attempt;
    bool done = false;

    if (body == NULL)
        return false;
    for (attempt = 1; !atomic_load(&wh.stopping); attempt++) {
        if (post(body)) {
            atomic_fetch_add(&wh.delivered, 1);
            done = true;
            break;
        }
        atomic_fetch_add(&wh.failed, 1);
        if (attempt >= cfg->webhook_attempts) {
            if (put_aside(body, &err) < 0) {
                /* Not acknowledged: it stays at the broker. */
                adapter_log("error", "webhook: %s", err.message);
                nap(delay);
                continue;
            }
            atomic_fetch_add(&wh.dead, 1);
            adapter_log("error", "webhook: the notice of leaf %llu put "
                        "aside after %u attempts", (unsigned long long)
                        n->leaf_index, attempt);
            done = true;
            break;
        }
        nap(delay);
        delay = delay * 2 > WEBHOOK_MAX_BACKOFF_MS ? WEBHOOK_MAX_BACKOFF_MS
                                                   : delay * 2;
    }
    sodium_memzero(body, strlen(body));
    free(body);
    return done;
}

static void *webhook_main(void *arg)
{
    once_notice n;
    once_error err;
    int rc;

    (void)arg;
    while (!atomic_load(&wh.stopping)) {
        rc = once_client_notice_next(wh.client, 1000, &n, &err);
        if (rc == -ONCE_ERR_TIMEOUT)
            continue;
        if (rc < 0) {
            adapter_log("warn", "webhook: %s", err.message);
            nap(1000);
            continue;
        }
        atomic_store(&wh.pending, 1);
        if (deliver(&n) &&
            once_client_notice_ack(wh.client, n.leaf_index, &err) < 0)
            adapter_log("warn", "webhook: acknowledgement: %s",
                        err.message);
        atomic_store(&wh.pending, 0);
        sodium_memzero(&n, sizeof(n));
    }
    return NULL;
}

int webhook_start(gateway *gw, once_error *err)
{
    int rc;

    if (gw->cfg.webhook_url[0] == '\0')
        return 0;
    wh.gw = gw;
    if ((rc = load_secret(gw->cfg.webhook_secret_path, err)) < 0)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
        (wh.curl = curl_easy_init()) == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "libcurl does not "
                              "start");
    curl_easy_setopt(wh.curl, CURLOPT_URL, gw->cfg.webhook_url);
    curl_easy_setopt(wh.curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(wh.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(wh.curl, CURLOPT_TIMEOUT_MS, (long)WEBHOOK_TIMEOUT_MS);
    curl_easy_setopt(wh.curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(wh.curl, CURLOPT_USERAGENT, "once-gateway");
    if ((rc = pool_open_extra(gw->core.pool, &wh.client, err)) < 0)
        return rc;
    if (pthread_create(&wh.thread, NULL, webhook_main, NULL) != 0)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "cannot start the "
                              "webhook thread");
    wh.running = true;
    return 0;
}

void webhook_stop(void)
{
    atomic_store(&wh.stopping, true);
    if (wh.running)
        pthread_join(wh.thread, NULL);
    wh.running = false;
    once_client_close(wh.client);
    wh.client = NULL;
    if (wh.curl != NULL) {
        curl_easy_cleanup(wh.curl);
        curl_global_cleanup();
        wh.curl = NULL;
    }
    sodium_memzero(wh.secret, sizeof(wh.secret));
}

void webhook_metrics(uint64_t *delivered, uint64_t *failed, uint64_t *dead,
                     uint64_t *pending)
{
    *delivered = atomic_load(&wh.delivered);
    *failed = atomic_load(&wh.failed);
    *dead = atomic_load(&wh.dead);
    *pending = atomic_load(&wh.pending);
}
