/*
 * notices.c - notices as files in the spool's notices/ (docs/ADAPTERS.md,
 * "Notices"; the broker's side is docs/PROTOCOL.md 4.9).
 *
 * With `notices = ...` in the configuration the spool subscribes at start
 * (held, held:TYPE, type:TYPE; or on: only what the department subscribed
 * elsewhere) and writes each notice the broker pushes as one JSON file,
 *
 *     notices/00000000000000000042.json
 *     {"leaf_index": 42, "type": "business-licence",
 *      "subject": "91110108MA0000001D", "version": 2, "event": "revoked"}
 *
 * named by its leaf index (20 digits, so names sort in log order). The
 * department's system reads a file and deletes it (or moves it away).
 *
 * At least once, never lost: the file is written under NAME.tmp (created
 * O_EXCL|O_NOFOLLOW, 0600 like the answers: a subject is personal data),
 * fsynced, renamed in, and the directory fsynced; only then is the notice
 * acknowledged to the broker (the department's cursor). A crash between
 * the two brings the notice again, and the spool writes the same bytes
 * under the same name: a system that already took the file may see it
 * once more, and keys on leaf_index. A file that cannot be written (a
 * full disk) is tried again, doubling the delay up to 30 s, and nothing
 * later is acknowledged meanwhile.
 *
 * One thread with a broker connection of its own (pool_open_extra): it
 * waits on pushes (once_client_notice_next) and would otherwise hold the
 * connection the main loop's files need. The cursor is the department's,
 * so a department should have one consumer that acknowledges: this spool,
 * or a libonce subscriber, not both (the gateway's long poll does not
 * acknowledge and may run beside either).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "file_io.h"
#include "spool.h"

#define RETRY_MAX_MS 30000

static struct {
    pthread_t thread;
    bool running;
    _Atomic bool stopping;
    once_client *client;
    spool *s;
} nw;

/* Sleeps ms in steps of 100, less when asked to stop. */
static void nap(unsigned ms)
{
    struct timespec ts = { 0, 100 * 1000000L };

    while (ms > 0 && !atomic_load(&nw.stopping)) {
        nanosleep(&ts, NULL);
        ms = ms > 100 ? ms - 100 : 0;
    }
}

/* Writes n durably into notices/: 0 or -code. */
static int write_notice(spool *s, const once_notice *n, once_error *err)
{
    char name[32], *text;
    json_t *doc;
    int rc;

    snprintf(name, sizeof(name), "%020llu.json",
             (unsigned long long)n->leaf_index);
    doc = json_pack("{s:I, s:s, s:s, s:I, s:s}", "leaf_index",
                    (json_int_t)n->leaf_index, "type", n->type, "subject",
                    n->subject, "version", (json_int_t)n->version, "event",
                    n->event == ONCE_NOTICE_REVOKED ? "revoked"
                                                    : "new_version");
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    rc = file_write_atomic(s->dirs.notices, name, text, strlen(text), 0600,
                           1, "notices", err);
    sodium_memzero(text, strlen(text));
    free(text);
    if (rc == 0 && fsync(s->dirs.notices) < 0)
        rc = once_error_set(err, ONCE_ERR_IO, "cannot fsync notices/: %s",
                            strerror(errno));
    return rc;
}

/* Subscribes as configured, until it is done or refused: 0, or -1 when
 * the broker refuses (logged; no notices then). */
static int subscribe(spool *s)
{
    const spool_config *cfg = &s->cfg;
    once_error err;
    int rc;

    while (!atomic_load(&nw.stopping)) {
        rc = once_client_subscribe(nw.client, cfg->notice_scope,
                                   cfg->notice_type, NULL, NULL, &err);
        if (rc == 0) {
            adapter_log("info", "notices: subscribed to %s%s%s",
                        cfg->notice_scope == ONCE_SCOPE_HELD
                            ? "the records held" : "the type",
                        cfg->notice_type[0] != '\0' ? " " : "",
                        cfg->notice_type);
            return 0;
        }
        if (rc != -ONCE_ERR_TIMEOUT && rc != -ONCE_ERR_UNAVAILABLE) {
            adapter_log("error", "notices: the broker refuses the "
                        "subscription (%s): %s", once_error_name(rc),
                        err.message);
            return -1;
        }
        nap(5000);
    }
    return -1;
}

static void *notices_main(void *arg)
{
    spool *s = arg;
    once_notice n;
    once_error err;
    unsigned delay;
    int rc;

    if (s->cfg.notice_scope != 0 && subscribe(s) < 0)
        return NULL;
    while (!atomic_load(&nw.stopping)) {
        rc = once_client_notice_next(nw.client, 1000, &n, &err);
        if (rc == -ONCE_ERR_TIMEOUT)
            continue;
        if (rc < 0) {
            adapter_log("warn", "notices: %s", err.message);
            nap(1000);
            continue;
        }
        delay = 500;
        while ((rc = write_notice(s, &n, &err)) < 0 &&
               !atomic_load(&nw.stopping)) {
            adapter_log("error", "notices: %s", err.message);
            nap(delay);
            delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
        }
        /* A lost ack is covered by the next one (acks go up to a leaf),
         * or brings the notice again after a restart. */
        if (rc == 0 && once_client_notice_ack(nw.client, n.leaf_index,
                                              &err) < 0)
            adapter_log("warn", "notices: acknowledgement: %s",
                        err.message);
        sodium_memzero(&n, sizeof(n));
    }
    return NULL;
}

int notices_start(spool *s, once_error *err)
{
    int rc;

    if (!s->cfg.notices)
        return 0;
    if ((rc = pool_open_extra(s->core.pool, &nw.client, err)) < 0)
        return rc;
    atomic_store(&nw.stopping, false);
    if (pthread_create(&nw.thread, NULL, notices_main, s) != 0) {
        once_client_close(nw.client);
        nw.client = NULL;
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "cannot start the "
                              "notices thread");
    }
    nw.running = true;
    return 0;
}

void notices_stop(void)
{
    atomic_store(&nw.stopping, true);
    if (nw.running)
        pthread_join(nw.thread, NULL);
    nw.running = false;
    once_client_close(nw.client);
    nw.client = NULL;
}

int notices_config(spool_config *cfg, const char *value)
{
    const char *type = NULL;

    cfg->notices = true;
    cfg->notice_scope = 0;
    cfg->notice_type[0] = '\0';
    if (strcmp(value, "off") == 0) {
        cfg->notices = false;
        return 0;
    }
    if (strcmp(value, "on") == 0)
        return 0;
    if (strcmp(value, "held") == 0) {
        cfg->notice_scope = ONCE_SCOPE_HELD;
        return 0;
    }
    if (strncmp(value, "held:", 5) == 0) {
        cfg->notice_scope = ONCE_SCOPE_HELD;
        type = value + 5;
    } else if (strncmp(value, "type:", 5) == 0) {
        cfg->notice_scope = ONCE_SCOPE_TYPE;
        type = value + 5;
    }
    if (type == NULL || type[0] == '\0' || strlen(type) > ONCE_MAX_NAME)
        return -1;
    snprintf(cfg->notice_type, sizeof(cfg->notice_type), "%s", type);
    return 0;
}
