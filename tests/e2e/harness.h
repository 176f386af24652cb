/*
 * harness.h - end-to-end test harness: a real onced in a temp broker home.
 *
 * Each test program makes a broker home with `$ONCECTL init` in a fresh
 * mkdtemp directory, registers departments, types and grants with
 * `$ONCECTL`, starts `$ONCED --home` on an ipc:// socket inside that
 * directory, and talks to it through libonce's client or through raw CURVE
 * DEALER sockets for the envelopes the client cannot be made to send.
 * Nothing listens on a network interface. See harness.c.
 */
#ifndef ONCE_TESTS_E2E_HARNESS_H
#define ONCE_TESTS_E2E_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "envelope.h"
#include "once/once.h"
#include "once.pb-c.h"

#define E2E_DIR_MAX 80

typedef struct e2e_broker {
    /* The temp directory holding everything; short, because an ipc://
     * path must fit a sockaddr_un (108 bytes). */
    char dir[E2E_DIR_MAX];
    char home[PATH_MAX];
    char endpoint[PATH_MAX + 8];
    char log_path[PATH_MAX];   /* onced's stderr */
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    pid_t pid;                 /* 0 when not running */
} e2e_broker;

typedef struct e2e_dept {
    char id[ONCE_MAX_NAME + 1];
    once_keypair kp;
    char pub_path[PATH_MAX];
} e2e_dept;

/* Makes the temp directory and the broker home (oncectl init). */
int e2e_init(e2e_broker *b);
/* Stops the broker if it runs (SIGKILL) and removes the directory. */
void e2e_cleanup(e2e_broker *b);

/* Runs `$ONCECTL --home HOME args...` (NULL-terminated); returns its exit
 * status, -1 when it could not run. Output goes to DIR/oncectl.log. */
int e2e_oncectl(e2e_broker *b, ...) __attribute__((sentinel));

/* Generates a key pair for id and writes its public key file (no
 * registration). */
int e2e_dept_keys(e2e_broker *b, e2e_dept *d, const char *id);
/* Keys plus `oncectl dept add`. */
int e2e_dept_add(e2e_broker *b, e2e_dept *d, const char *id);

/* The one record type and grant most tests need: `oncectl type add type
 * --issuer issuer --subject enterprise --fields fields`, then `oncectl
 * grant add --requester requester --type type --purpose purpose --fields
 * granted`. 0, or -1 when either fails. */
int e2e_enterprise_type(e2e_broker *b, const char *type,
                        const e2e_dept *issuer, const char *fields,
                        const e2e_dept *requester, const char *purpose,
                        const char *granted);

/* Appends settings (a printf format) to HOME/once.conf, where the last
 * setting of a name wins; they apply when onced next starts. 0, or -1
 * when the file cannot be written. */
int e2e_configure(e2e_broker *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Publishes version 1 of a record of type about subject, issued and
 * signed by issuer, whose one field "name" holds name. 0, or -1 with the
 * client's message in err. */
int e2e_publish_name(e2e_broker *b, const e2e_dept *issuer, const char *type,
                     const char *subject, const char *name, once_error *err);

/* Revokes subject's record of type at version, signed by issuer; *leaf is
 * the revocation's leaf index. 0, or -1 with err set (also when the
 * receipt names no leaf). */
int e2e_revoke(e2e_broker *b, const e2e_dept *issuer, const char *type,
               const char *subject, uint64_t version, uint64_t *leaf,
               once_error *err);

/* Starts onced with its console off (--console-listen=, since tests run in
 * parallel; an extra --console-listen=ADDRESS:PORT turns it on), plus the
 * extra arguments (NULL-terminated), and waits until it answers
 * a ping from probe, a registered department. Returns 0, or -1 when onced
 * exited or never answered (its log is printed). */
int e2e_start(e2e_broker *b, const e2e_dept *probe, ...)
    __attribute__((sentinel));
/* SIGTERM and wait: onced's exit status, or -1 when it died by a signal. */
int e2e_stop(e2e_broker *b);
/* SIGKILL and wait. */
void e2e_kill(e2e_broker *b);
/* Prints onced's log to stderr (for failing tests). */
void e2e_dump_log(const e2e_broker *b);
/* True when onced's log holds text. */
bool e2e_log_contains(const e2e_broker *b, const char *text);
/* True when a line of the file at path holds text (false when it cannot
 * be opened). */
bool e2e_file_contains(const char *path, const char *text);

/* ---- commands and files, failing the calling cmocka test --------------- */

/* The client for d, failing the test with the client's message when it
 * cannot be made. */
void e2e_open_client(e2e_broker *b, const e2e_dept *d, once_client **c);
/* Publishes version 1 of (type, subject) with one text field "name" as
 * issuer (e2e_publish_name), failing the test when it cannot. */
void e2e_must_publish_name(e2e_broker *b, const e2e_dept *issuer,
                           const char *type, const char *subject,
                           const char *name);
/* Runs a shell command (a printf format) with stderr joined to stdout:
 * its exit status (128 when it did not exit), and all it printed in *out
 * (malloc'd, NUL-terminated). */
int e2e_run(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The whole file at path (malloc'd, with a NUL after its len bytes). */
uint8_t *e2e_slurp(const char *path, size_t *len);
/* Writes data as the whole file at path. */
void e2e_spit(const char *path, const uint8_t *data, size_t len);

/* Every notice of c's department after `after`, by pulls until the broker
 * has scanned to its newest leaf or cap notices are in out; the count,
 * failing the test when a pull fails. */
size_t e2e_pull_notices(once_client *c, uint64_t after, once_notice *out,
                        size_t cap);

/* A libonce client for d with a generous timeout. */
int e2e_client(e2e_broker *b, const e2e_dept *d, once_client **out,
               once_error *err);

/* A valid Unified Social Credit Code made from n, and a valid resident ID
 * number made from n. out holds 19 bytes. */
void e2e_uscc(char out[19], unsigned n);
void e2e_resident_id(char out[19], unsigned n);

/* ---- raw CURVE DEALER sockets ----------------------------------------- */

typedef struct e2e_raw {
    void *ctx;
    void *sock;
    void *monitor;
} e2e_raw;

/* Connects a DEALER with kp's CURVE keys to the broker, with a monitor for
 * handshake and disconnect events. */
int e2e_raw_open(e2e_raw *r, const e2e_broker *b, const once_keypair *kp);
void e2e_raw_close(e2e_raw *r);
int e2e_raw_send(e2e_raw *r, const void *data, size_t len);
/* Receives one reply envelope, waiting up to timeout_ms. Returns 1 with
 * *out (free with once__envelope__free_unpacked), 0 on timeout, -1 on an
 * undecodable reply. */
int e2e_raw_recv(e2e_raw *r, int timeout_ms, Once__Envelope **out);
/* Waits up to timeout_ms for one of the monitor events in mask; returns
 * the event or 0. */
int e2e_raw_wait_event(e2e_raw *r, int mask, int timeout_ms);

/* Builds and signs an envelope (signer may differ from sender). */
int e2e_envelope(uint8_t **out, size_t *len, const char *sender,
                 uint64_t session, uint64_t seq, uint64_t sent_at, int kind,
                 const uint8_t *body, size_t body_len,
                 const once_keypair *signer);
/* The Error code in a reply envelope, 0 for a Response, -1 otherwise. */
int e2e_reply_code(const Once__Envelope *reply);
/* A Request body (malloc'd). */
int e2e_request_body(uint8_t **out, size_t *len, const char *type,
                     const char *subject, const char *purpose,
                     const char *case_id, uint64_t version);
/* A random non-zero session. */
uint64_t e2e_session(void);

#endif
