/*
 * common.h - what the adapters (once-gateway, once-spool) share.
 *
 * Both adapters sit beside a department's own systems, hold its key and
 * talk to onced through libonce; they differ only in how the department's
 * system reaches them (HTTP for the gateway, files for the spool). What
 * does not depend on that is here, once, in the internal static library
 * adapters/common (never installed, no stable API):
 *
 *   log.c          log lines on stderr, never a subject
 *   startup.c      command line, configuration file, keys, state,
 *                  connections, signals
 *   config.c       the INI keys both adapters' configurations have
 *   pool.c         the pool of broker connections callers borrow
 *   lanes.c        requests of many threads pipelined on a few connections
 *   dircache.c     the broker's signed directory, kept fresh
 *   state.c        the idempotency state in LMDB (the signed envelopes)
 *   json_record.c  JSON bodies to records (the fuzzed parser)
 *   answer.c       answers as JSON: records checked against the directory,
 *                  receipts, RFC 9457 problems and their HTTP status
 */
#ifndef ONCE_ADAPTER_COMMON_H
#define ONCE_ADAPTER_COMMON_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "once/once.h"

#define ADAPTER_DIRECTORY_REFRESH_MS 30000
#define ADAPTER_MAX_ORIGIN 255

/* ---- log lines (log.c) ------------------------------------------------ */

/* Names the program in every line ("gateway", "spool"); static string. */
void adapter_log_init(const char *program);
/* "TIME LEVEL PROGRAM: message" on stderr. Never a subject. */
void adapter_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- configuration (config.c) ----------------------------------------- */

/* The keys both adapters read: the department, its key, the broker and
 * the state. */
typedef struct adapter_config {
    char department[ONCE_MAX_NAME + 1];
    char key_path[PATH_MAX];
    char broker_endpoint[256];
    char broker_key_path[PATH_MAX];
    char log_origin[ADAPTER_MAX_ORIGIN + 1];   /* "" : proofs not checked */
    char state_dir[PATH_MAX];
    unsigned timeout_ms;
    unsigned idempotency_hours;                /* 0: 24 */
} adapter_config;

/* Where a value is read: paths are relative to dir (the configuration
 * file's directory); a refusal is explained in problem. */
typedef struct adapter_ini {
    char dir[PATH_MAX];
    char problem[256];
} adapter_ini;

/* Sets ini->dir from the configuration file's path. */
void adapter_ini_init(adapter_ini *ini, const char *config_path);
/* out = value, made absolute; 1, or 0 when too long. */
int adapter_ini_path(adapter_ini *ini, char *out, const char *value);
/* A decimal number in [min, max] into *out: 1, or 0 with problem set. */
int adapter_ini_unsigned(adapter_ini *ini, const char *name,
                         const char *value, unsigned min, unsigned max,
                         unsigned *out);
int adapter_ini_size(adapter_ini *ini, const char *name, const char *value,
                     size_t min, size_t max, size_t *out);
/* One of the adapter_config keys: 1 taken, 0 refused (problem set), -1
 * not one of them. */
int adapter_config_entry(adapter_ini *ini, adapter_config *cfg,
                         const char *name, const char *value);
/* The keys every adapter needs are there: 0, or -1 with problem set. */
int adapter_config_check(adapter_ini *ini, const adapter_config *cfg);

/* ---- start-up (startup.c) --------------------------------------------- */

typedef struct pool pool;
typedef struct dircache dircache;
typedef struct idem_state idem_state;

#define ADAPTER_EXIT_RUNTIME 1
#define ADAPTER_EXIT_USAGE 2

/* --help's lines for the options and the keys every adapter has. */
#define ADAPTER_USAGE_OPTIONS(default_config) \
    "Options:\n" \
    "  --config FILE   the configuration (default " default_config ")\n" \
    "  --help          this text\n" \
    "  --version       the version\n"
#define ADAPTER_USAGE_KEYS \
    "  department        this department's id at the broker (required)\n" \
    "  key               its secret key file, 0600 (required)\n" \
    "  broker            the broker's endpoint: tcp://HOST:PORT, ipc://PATH\n" \
    "  broker_key        the broker's public key file (broker.pub)\n" \
    "  log_origin        the broker's log origin; when set, receipt proofs\n" \
    "                    are verified (optional)\n" \
    "  state_directory   the idempotency state, created 0700 (required)\n" \
    "  timeout_ms        per broker call (default 5000)\n" \
    "  idempotency_hours how long a key's envelope and answer are kept\n" \
    "                    after their last use (default 24)\n"

/* What an adapter is, for its start-up. */
typedef struct adapter_program {
    const char *name;             /* "once-gateway" */
    const char *section;          /* its INI section and log name */
    const char *default_config;
    const char *usage;            /* --help */
    const char *version;
    /* Its own keys: 1 taken, 0 refused (ini->problem set), -1 unknown. */
    int (*own_entry)(void *user, adapter_ini *ini, const char *name,
                     const char *value);
    /* Its own keys read, do they work together: 0, or -1 after a line on
     * stderr. */
    int (*check)(void *user, const char *path);
} adapter_program;

/* What every adapter holds once started. */
typedef struct adapter_core {
    once_keypair key;             /* the department's; wiped at close */
    uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES];
    idem_state *state;
    pool *pool;
    dircache *dir;                /* NULL when not asked for */
} adapter_core;

/* --config FILE, --help, --version: 0 to run, 1 to exit 0 (help or
 * version printed), -1 for a usage error (usage printed). */
int adapter_parse_args(int argc, char **argv, const adapter_program *p,
                       const char **config);
/* Reads the configuration at path into base (the shared keys) and,
 * through p->own_entry, user, then p->check: 0, or -1 after a line on
 * stderr. */
int adapter_read_config(const adapter_program *p, const char *path,
                        adapter_config *base, void *user);
/* The start every adapter makes: the command line, the log's name, the
 * configuration (base and user hold the defaults), libsodium, SIGTERM
 * and SIGINT blocked (into signals), SIGPIPE ignored. -1 to go on, or the
 * exit status to return with. */
int adapter_begin(int argc, char **argv, const adapter_program *p,
                  adapter_config *base, void *user, sigset_t *signals);
/* The key, the broker's key, the state: 0 or -code. */
int adapter_open_local(adapter_core *a, const adapter_config *cfg,
                       once_error *err);
/* connections to the broker, and the directory when asked: 0 or -code. */
int adapter_connect(adapter_core *a, const adapter_config *cfg,
                    unsigned connections, bool directory, once_error *err);
void adapter_close(adapter_core *a);

/* ---- the connection pool (pool.c) ------------------------------------- */


int pool_open(pool **out, const char *endpoint, const char *department,
              unsigned size, unsigned timeout_ms, const once_keypair *kp,
              const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
              once_error *err);
/* Waits for a free connection. */
once_client *pool_borrow(pool *p);
/* Gives c back; broken (its last call timed out, so a late answer may
 * still arrive on it) makes the pool replace it with a new connection. */
void pool_return(pool *p, once_client *c, bool broken);
/* A connection with the pool's parameters that is not the pool's: for a
 * thread that waits on it for long (close it with once_client_close). */
int pool_open_extra(pool *p, once_client **out, once_error *err);
void pool_close(pool *p);

/* ---- requests pipelined on a few connections (lanes.c) --------------- */

typedef struct lanes lanes;

/* n connections with p's parameters, each with a thread that keeps up to
 * ONCE_MAX_IN_FLIGHT requests in flight on it: 0 or -code. */
int lanes_open(lanes **out, pool *p, unsigned n, once_error *err);
/* A request from any thread, answered as once_client_request_as (user not
 * NULL) or once_client_request_ex would answer it, on one of the lanes
 * (round robin). Blocks until it ended: its own timeout bounds that. */
int lanes_request(lanes *ls, const char *user, const char *type,
                  const char *subject, const char *purpose,
                  const char *case_id, uint64_t version, int want_proof,
                  once_record **out, once_receipt *receipt, once_error *err);
/* Finishes the requests the lanes hold, then closes them. */
void lanes_close(lanes *ls);

/* ---- the directory (dircache.c) --------------------------------------- */


int dircache_open(dircache **out, pool *p, once_error *err);
void dircache_close(dircache *d);
/* The current directory, refreshed first when older than the refresh
 * interval or when force is set, unless a failed refresh's back-off runs;
 * released with dircache_release. NULL with err when none could be had,
 * or when the last refresh failed and the kept one is stale. */
const once_directory *dircache_get(dircache *d, bool force, once_error *err);
void dircache_release(dircache *d);
/* Milliseconds since the directory was last confirmed by the broker;
 * UINT64_MAX when never. */
uint64_t dircache_age_ms(dircache *d);
/* Milliseconds until a refresh may be tried again after a failed one; 0
 * when not backing off (the last refresh succeeded, or the wait is over). */
uint64_t dircache_backoff_ms(dircache *d);
/* Refreshes tried and failed since the start, for /metrics. */
void dircache_counts(dircache *d, uint64_t *attempts, uint64_t *failures);

/* ---- idempotency state (state.c) -------------------------------------- */


/* What is kept under one caller's key. */
typedef struct idem_entry {
    uint8_t fingerprint[32];   /* SHA-256 of what was asked */
    uint8_t *envelope;         /* the signed envelope, sent as is */
    size_t envelope_len;
    int status;                /* 0: no final answer yet */
    char *answer;              /* the JSON answered, when status != 0 */
    uint64_t version;          /* the record version in the envelope */
} idem_entry;

/* Opens (creating) the state in dir; entries are kept keep_ms after their
 * last write (0: 24 hours). */
int state_open(idem_state **out, const char *dir, uint64_t keep_ms,
               once_error *err);
void state_close(idem_state *s);
/* 0 with *e filled (free with idem_entry_clear), -ONCE_ERR_NOT_FOUND. */
int state_get(idem_state *s, const char *caller, const char *key,
              idem_entry *e, once_error *err);
/* Writes e under (caller, key) durably. */
int state_put(idem_state *s, const char *caller, const char *key,
              const idem_entry *e, once_error *err);
/* Writes entries[i] under (caller, keys[i]), all n in one durable commit
 * (one fsync): all of them or, on an error, none. */
int state_put_many(idem_state *s, const char *caller,
                   const char *const *keys, const idem_entry *const *entries,
                   size_t n, once_error *err);
void idem_entry_clear(idem_entry *e);
/* Marks (caller, key) in use by a request of this process: false when
 * another request holds it. */
bool state_claim(idem_state *s, const char *caller, const char *key);
void state_unclaim(idem_state *s, const char *caller, const char *key);

/* ---- JSON bodies (json_record.c) -------------------------------------- */

/* Parses a publish body {"fields": {...}, "version", "valid_from",
 * "valid_until"} into a new unsigned record of type and subject issued by
 * issuer; version 0 in the body's absence is replaced by default_version.
 * On a refusal where names the member at fault ("fields.name"). */
int json_publish_record(const char *body, size_t len, const char *type,
                        const char *subject, const char *issuer,
                        uint64_t default_version, once_record **out,
                        char *where, size_t where_cap, once_error *err);
/* The same for a body already parsed (a JSON object; not taken). */
int json_publish_object(json_t *doc, const char *type, const char *subject,
                        const char *issuer, uint64_t default_version,
                        once_record **out, char *where, size_t where_cap,
                        once_error *err);
/* Parses a revocation body {"reason", "version"} into a new unsigned
 * revocation with the reason in its header (once_record_new_revocation_
 * reason: it is signed with it and reaches every requester); *reason gets
 * a copy of the reason (free it). */
int json_revocation_record(const char *body, size_t len, const char *type,
                           const char *subject, const char *issuer,
                           uint64_t default_version, once_record **out,
                           char **reason, char *where, size_t where_cap,
                           once_error *err);

/* ---- answers (answer.c) ----------------------------------------------- */

/* Whether rc (0 or -code from a write or a request) is the answer for
 * good: false when a retry of the same bytes may get another (no answer,
 * or a refusal the broker does not keep as the envelope's answer: quota,
 * unavailable, internal, storage full, clock skew). */
bool adapter_answer_is_final(int rc);
/* The HTTP status of a once error code (the x-once-error-status table of
 * adapters/gateway/openapi.yaml). */
int adapter_http_status(int code);
/* An RFC 9457 problem: {"type": "urn:once:error:CODE", "title", "status",
 * "detail", "code"}. */
json_t *adapter_problem_json(int status, const char *code,
                             const char *detail);
/* Bytes as a JSON string of lowercase hex. */
json_t *adapter_hex_json(const uint8_t *p, size_t n);
/* A receipt: leaf_index, and the proof when it has one. */
json_t *adapter_receipt_json(const once_receipt *r, int proof_verified);
/* The answer to a publish or revocation accepted by the broker. */
json_t *adapter_write_json(const char *type, const char *subject,
                           uint64_t version, bool revocation,
                           const char *issuer, const once_receipt *r,
                           int proof_verified);
/* Checks r against the directory: its issuer is known and an issuer of
 * its type, its signature and every disclosure verify. 0 with the
 * issuer's key in pk and the directory's digest in dir_digest, or -code:
 * -ONCE_ERR_UNAVAILABLE (no directory), -ONCE_ERR_UNKNOWN_SENDER,
 * -ONCE_ERR_NOT_ISSUER, or once_record_verify's refusal. */
int adapter_verify_record(dircache *d, const once_record *r,
                          uint8_t pk[ONCE_PUBLIC_KEY_BYTES],
                          uint8_t dir_digest[ONCE_DIGEST_BYTES],
                          once_error *err);
/* The answer to a request, r verified by adapter_verify_record: the
 * record's header, what was verified, the receipt and the disclosed
 * fields (values that are not UTF-8 in base64 under binary_fields). */
json_t *adapter_record_json(const once_record *r,
                            const uint8_t pk[ONCE_PUBLIC_KEY_BYTES],
                            const uint8_t dir_digest[ONCE_DIGEST_BYTES],
                            const once_receipt *receipt, int proof_verified);

#endif
