/*
 * routes.c - the gateway's /v1 API (adapters/gateway/openapi.yaml).
 *
 *   PUT  /v1/records/{type}/{subject}              publish
 *   POST /v1/records/{type}/{subject}/revocations  revoke
 *   GET  /v1/records/{type}/{subject}              request
 *   GET  /v1/catalogue                             what this department may do
 *   /v1/subscriptions..., GET /v1/notices          notices.c
 *   POST /v1/notices/ack                           notices.c
 *   GET  /v1/health, /v1/openapi.yaml, /metrics
 *
 * Publish and revoke: the gateway builds the record from the JSON body
 * (adapters/common/json_record.c), signs it with the department's key and
 * sends it. With an Idempotency-Key the signed envelope is committed to the
 * state (adapters/common/state.c) before it is sent, and a retry sends the
 * same bytes or, once the answer is known, gets the stored answer; the same
 * key with another request is 409. A version the body does not give is the
 * gateway's clock in milliseconds, made to grow strictly within a run, so
 * successive publishes through one gateway never collide (the broker
 * refuses a version that is not above the latest: STALE_VERSION, 409).
 *
 * Request: the broker answers with the issuer-signed record and the
 * disclosures the department's grant allows; an Once-User header names
 * the official who asks, signed into the request and written into its log
 * leaf (PROTOCOL.md 4.3). Requests are pipelined, many in flight on a few
 * connections of their own (request_lanes, adapters/common/lanes.c), or
 * with request_lanes = 0 borrow a pool connection each.
 * A revoked record comes with the issuer's reason
 * from the signed revocation. Before a field is handed
 * over, the gateway checks it against the broker's signed directory
 * (adapter_verify_record, adapters/common/answer.c: the issuer known and
 * listed for the type, its signature and every disclosure's digest). A receipt
 * proof asked for is checked with the broker key when the log's origin is
 * configured. Anything that does not verify is 502: the fields are not
 * handed over.
 *
 * Broker trouble: a call that gets no answer in time is 504 (slow) when the
 * broker answered something within the last two timeouts, else 503 with
 * Retry-After (unreachable: libzmq connects in the background, so "no
 * answer for a while" is what unreachable looks like from here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gateway.h"
#include "monotonic.h"

typedef struct record_path {
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];
    bool revocations;
} record_path;

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static _Atomic uint64_t broker_seen_at; /* monotonic ms of the last answer */

/* Notes that the broker answered (rc 0 or a wire refusal). */
static void broker_answered(int rc)
{
    int code = rc < 0 ? -rc : rc;

    if (code < ONCE_ERR_INVALID_ARGUMENT)
        atomic_store(&broker_seen_at, monotonic_ms());
}

static void broker_problem(http_call *c, int rc, const once_error *err)
{
    uint64_t seen = atomic_load(&broker_seen_at);

    if (rc == -ONCE_ERR_TIMEOUT &&
        (seen == 0 ||
         monotonic_ms() - seen > 2 * (uint64_t)c->gw->cfg.base.timeout_ms)) {
        http_problem(c, 503, "UNAVAILABLE", "the broker is unreachable: "
                     "%s", err->message);
        snprintf(c->retry_after, sizeof(c->retry_after), "5");
        return;
    }
    http_once_problem(c, rc, err);
}

static uint64_t next_version(gateway *gw)
{
    uint64_t last = atomic_load(&gw->last_version), next;

    do {
        next = wall_ms();
        if (next <= last)
            next = last + 1;
    } while (!atomic_compare_exchange_weak(&gw->last_version, &last, next));
    return next;
}

/* "/v1/records/{type}/{subject}[/revocations]": 0, or -1. */
static int parse_record_path(const char *path, record_path *out)
{
    const char *p = path + strlen("/v1/records/"), *slash, *rest;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (strncmp(path, "/v1/records/", strlen("/v1/records/")) != 0)
        return -1;
    slash = strchr(p, '/');
    if (slash == NULL || slash == p || (size_t)(slash - p) > ONCE_MAX_NAME)
        return -1;
    memcpy(out->type, p, (size_t)(slash - p));
    p = slash + 1;
    rest = strchr(p, '/');
    n = rest != NULL ? (size_t)(rest - p) : strlen(p);
    if (n == 0 || n > ONCE_MAX_SUBJECT)
        return -1;
    memcpy(out->subject, p, n);
    if (rest == NULL)
        return 0;
    if (strcmp(rest, "/revocations") != 0)
        return -1;
    out->revocations = true;
    return 0;
}

unsigned routes_required_ops(http_call *c)
{
    record_path rp;

    if (strcmp(c->path, "/v1/health") == 0) {
        c->route = "health";
        return 0;
    }
    if (strcmp(c->path, "/v1/openapi.yaml") == 0) {
        c->route = "openapi";
        return 0;
    }
    if (strcmp(c->path, "/metrics") == 0) {
        c->route = "metrics";
        return OP_METRICS;
    }
    if (strcmp(c->path, "/v1/catalogue") == 0) {
        c->route = "catalogue";
        return OP_CATALOGUE;
    }
    if (notices_route(c))
        return OP_NOTICES;
    if (parse_record_path(c->path, &rp) == 0) {
        if (rp.revocations) {
            c->route = "revoke";
            return strcmp(c->method, "POST") == 0 ? OP_REVOKE : 0;
        }
        if (strcmp(c->method, "PUT") == 0) {
            c->route = "publish";
            return OP_PUBLISH;
        }
        c->route = "request";
        return strcmp(c->method, "GET") == 0 ? OP_REQUEST : 0;
    }
    c->route = "unmatched";
    return 0;
}

/* ---- receipts and records as JSON ------------------------------------- */

/* A boolean query parameter: 0/1, or -1 when not true/false. */
static int query_flag(http_call *c, const char *name)
{
    const char *v = http_query(c, name);

    if (v == NULL || strcmp(v, "false") == 0)
        return 0;
    if (strcmp(v, "true") == 0)
        return 1;
    return -1;
}

/* ---- publish and revoke ---------------------------------------------- */

/* Sends envelope (prepared earlier or just now) and turns the answer into
 * c's answer; *final says whether it is the answer for good (kept for a
 * retry) or one a retry of the same bytes may change. */
static void send_write(http_call *c, const record_path *rp,
                       const uint8_t *envelope, size_t envelope_len,
                       uint64_t version, const char *reason, bool *final)
{
    once_receipt receipt = { 0 };
    once_client *client = pool_borrow(c->gw->core.pool);
    once_error err;
    json_t *doc;
    int rc, proof_ok;

    rc = once_client_send_prepared(client, envelope, envelope_len, &receipt,
                                   &err);
    pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
    broker_answered(rc);
    *final = adapter_answer_is_final(rc);
    if (rc < 0) {
        broker_problem(c, rc, &err);
        once_receipt_clear(&receipt);
        return;
    }
    /* A proof that does not verify does not undo the write: it is
     * reported as not verified. */
    proof_ok = receipt.has_proof && c->gw->cfg.base.log_origin[0] != '\0' &&
               once_receipt_verify(&receipt, c->gw->core.broker_pk,
                                   c->gw->cfg.base.log_origin, &err) == 0;
    doc = adapter_write_json(rp->type, rp->subject, version,
                             rp->revocations, c->gw->cfg.base.department,
                             &receipt, proof_ok);
    if (doc != NULL && reason != NULL)
        json_object_set_new(doc, "reason", json_string(reason));
    once_receipt_clear(&receipt);
    if (!rp->revocations)
        snprintf(c->location, sizeof(c->location),
                 "/v1/records/%s/%s?version=%llu", rp->type, rp->subject,
                 (unsigned long long)version);
    http_json(c, 201, doc);
}

/* SHA-256 of method, path and body: what makes two requests "the same". */
static void fingerprint(const http_call *c, uint8_t out[32])
{
    crypto_hash_sha256_state h;

    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const uint8_t *)c->method,
                              strlen(c->method) + 1);
    crypto_hash_sha256_update(&h, (const uint8_t *)c->path,
                              strlen(c->path) + 1);
    crypto_hash_sha256_update(&h, (const uint8_t *)c->body, c->body_len);
    crypto_hash_sha256_final(&h, out);
}

/* Builds and signs the record of the body and prepares its envelope into
 * e. *reason gets a revocation's reason. 0, or c is answered. */
static int prepare(http_call *c, const record_path *rp, int want_proof,
                   idem_entry *e, char **reason)
{
    gateway *gw = c->gw;
    once_record *r = NULL;
    once_client *client;
    char where[96];
    once_error err;
    int rc;

    rc = rp->revocations
        ? json_revocation_record(c->body, c->body_len, rp->type, rp->subject,
                                 gw->cfg.base.department, next_version(gw), &r,
                                 reason, where, sizeof(where), &err)
        : json_publish_record(c->body, c->body_len, rp->type, rp->subject,
                              gw->cfg.base.department, next_version(gw), &r,
                              where, sizeof(where), &err);
    if (rc < 0) {
        http_problem(c, 400, "INVALID_ARGUMENT", "%s: %s", where,
                     err.message);
        return rc;
    }
    if ((rc = once_record_sign(r, &gw->core.key, &err)) == 0) {
        e->version = once_record_version(r);
        client = pool_borrow(gw->core.pool);
        rc = once_client_prepare_write(client, r, want_proof, &e->envelope,
                                       &e->envelope_len, &err);
        pool_return(gw->core.pool, client, false);
    }
    once_record_free(r);
    if (rc < 0)
        http_once_problem(c, rc, &err);
    return rc;
}

/* The reason of a revocation body already checked once. */
static char *stored_reason(const http_call *c)
{
    json_t *doc = json_loadb(c->body, c->body_len, 0, NULL);
    const char *text = json_string_value(json_object_get(doc, "reason"));
    char *reason = text != NULL ? strdup(text) : NULL;

    json_decref(doc);
    return reason;
}

/* Publish or revoke, with or without an Idempotency-Key. */
static void write_route(http_call *c, const record_path *rp)
{
    gateway *gw = c->gw;
    const char *key = http_header(c, "Idempotency-Key");
    const char *caller = c->caller->caller;
    bool final = false;
    idem_entry e = { 0 };
    uint8_t fp[32];
    char *reason = NULL;
    once_error err;
    int rc, want_proof = query_flag(c, "proof");

    if (want_proof < 0) {
        http_problem(c, 400, "INVALID_ARGUMENT", "proof must be true or "
                     "false");
        return;
    }
    fingerprint(c, fp);
    if (key != NULL && !state_claim(gw->core.state, caller, key)) {
        http_problem(c, 409, "IDEMPOTENCY_CONFLICT", "a request with this "
                     "Idempotency-Key is in progress");
        return;
    }
    rc = key != NULL ? state_get(gw->core.state, caller, key, &e, &err)
                     : -ONCE_ERR_NOT_FOUND;
    if (rc == -ONCE_ERR_NOT_FOUND) {
        memcpy(e.fingerprint, fp, sizeof(fp));
        if (prepare(c, rp, want_proof, &e, &reason) < 0)
            goto out;
        /* Durable before the first attempt: a retry must find these
         * bytes, or the record would get a second version. */
        if (key != NULL &&
            (rc = state_put(gw->core.state, caller, key, &e, &err)) < 0) {
            http_once_problem(c, rc, &err);
            goto out;
        }
    } else if (rc < 0) {
        http_once_problem(c, rc, &err);
        goto out;
    } else if (sodium_memcmp(fp, e.fingerprint, sizeof(fp)) != 0) {
        http_problem(c, 409, "IDEMPOTENCY_CONFLICT", "this Idempotency-Key "
                     "was used for another request");
        goto out;
    } else if (e.status != 0) {
        /* The answer is known: the same answer again. */
        c->status = e.status;
        c->response = e.answer;
        c->response_len = strlen(e.answer);
        c->content_type = e.status < 300 ? "application/json"
                                         : "application/problem+json";
        e.answer = NULL;
        goto out;
    } else if (rp->revocations) {
        reason = stored_reason(c);
    }
    send_write(c, rp, e.envelope, e.envelope_len, e.version, reason, &final);
    if (key != NULL && final && c->response != NULL) {
        free(e.answer);
        e.answer = strdup(c->response);
        e.status = c->status;
        if (e.answer != NULL &&
            state_put(gw->core.state, caller, key, &e, &err) < 0)
            adapter_log("error", "cannot keep the answer of an idempotent "
                        "request: %s", err.message);
    }
out:
    if (key != NULL)
        state_unclaim(gw->core.state, caller, key);
    idem_entry_clear(&e);
    free(reason);
}

/* ---- request ----------------------------------------------------------- */

static void request_route(http_call *c, const record_path *rp)
{
    const char *purpose = http_query(c, "purpose");
    const char *case_id = http_query(c, "case_id");
    const char *version_text = http_query(c, "version");
    const char *user = http_header(c, "Once-User");
    uint8_t pk[ONCE_PUBLIC_KEY_BYTES], dir_digest[ONCE_DIGEST_BYTES];
    once_receipt receipt = { 0 };
    once_record *r = NULL;
    once_client *client;
    uint64_t version = 0;
    once_error err;
    json_t *doc;
    int rc, want_proof = query_flag(c, "proof"), proof_ok = 0;
    char *end;

    if (version_text != NULL) {
        version = strtoull(version_text, &end, 10);
        if (version_text[0] < '0' || version_text[0] > '9' || *end != '\0' ||
            version == 0) {
            http_problem(c, 400, "INVALID_ARGUMENT", "version: must be a "
                         "positive integer");
            return;
        }
    }
    if (want_proof < 0) {
        http_problem(c, 400, "INVALID_ARGUMENT", "proof: must be true or "
                     "false");
        return;
    }
    /* Purpose and case id go to the broker even when empty: it refuses
     * the request (MISSING_PURPOSE) and logs the refusal. The official
     * of Once-User is signed into the request and logged with it; a
     * header sent empty is refused (400) rather than read as none. */
    if (c->gw->lanes != NULL) {
        rc = lanes_request(c->gw->lanes, user, rp->type, rp->subject,
                           purpose != NULL ? purpose : "",
                           case_id != NULL ? case_id : "", version,
                           want_proof, &r, &receipt, &err);
    } else {
        client = pool_borrow(c->gw->core.pool);
        rc = user != NULL
            ? once_client_request_as(client, user, rp->type, rp->subject,
                                     purpose != NULL ? purpose : "",
                                     case_id != NULL ? case_id : "",
                                     version, want_proof, &r, &receipt,
                                     &err)
            : once_client_request_ex(client, rp->type, rp->subject,
                                     purpose != NULL ? purpose : "",
                                     case_id != NULL ? case_id : "",
                                     version, want_proof, &r, &receipt,
                                     &err);
        pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
    }
    broker_answered(rc);
    if (rc < 0) {
        broker_problem(c, rc, &err);
        goto out;
    }
    rc = adapter_verify_record(c->gw->core.dir, r, pk, dir_digest, &err);
    if (rc < 0) {
        /* Nothing of r is handed over: 502, or 503 without a directory. */
        if (rc == -ONCE_ERR_UNAVAILABLE) {
            http_problem(c, 503, "UNAVAILABLE", "%s", err.message);
            snprintf(c->retry_after, sizeof(c->retry_after), "5");
        } else {
            http_problem(c, 502, once_error_name(rc), "%s", err.message);
        }
        goto out;
    }
    if (want_proof && receipt.has_proof &&
        c->gw->cfg.base.log_origin[0] != '\0') {
        rc = once_receipt_verify(&receipt, c->gw->core.broker_pk,
                                 c->gw->cfg.base.log_origin, &err);
        if (rc < 0) {
            http_problem(c, 502, once_error_name(rc), "the receipt's proof "
                         "does not verify: %s", err.message);
            goto out;
        }
        proof_ok = 1;
    }
    doc = adapter_record_json(r, pk, dir_digest, &receipt, proof_ok);
    http_json(c, 200, doc);
out:
    once_receipt_clear(&receipt);
    once_record_free(r);
}

/* ---- catalogue, health, documents -------------------------------------- */

static json_t *string_array(const char *const *items, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

static void catalogue_route(http_call *c)
{
    const char *self = c->gw->cfg.base.department;
    json_t *publish = json_array(), *request = json_array(), *doc;
    const once_directory *dir;
    once_directory_type t;
    once_directory_grant g;
    once_error err;
    size_t i, k;

    dir = dircache_get(c->gw->core.dir, false, &err);
    if (dir == NULL) {
        json_decref(publish);
        json_decref(request);
        http_problem(c, 503, "UNAVAILABLE", "no directory from the broker: "
                     "%s", err.message);
        snprintf(c->retry_after, sizeof(c->retry_after), "5");
        return;
    }
    for (i = 0; i < once_directory_type_count(dir); i++) {
        json_t *purposes = json_array();

        once_directory_type_at(dir, i, &t);
        for (k = 0; k < t.issuer_count; k++)
            if (strcmp(t.issuers[k], self) == 0)
                json_array_append_new(publish, json_pack(
                    "{s:s, s:s, s:o}", "type", t.name, "subject_kind",
                    once_subject_kind_name(t.subject_kind), "fields",
                    string_array(t.fields, t.field_count)));
        for (k = 0; k < once_directory_grant_count(dir); k++) {
            once_directory_grant_at(dir, k, &g);
            if (strcmp(g.type, t.name) == 0)
                json_array_append_new(purposes, json_pack(
                    "{s:s, s:o}", "purpose", g.purpose, "fields",
                    string_array(g.fields, g.field_count)));
        }
        if (json_array_size(purposes) > 0)
            json_array_append_new(request, json_pack(
                "{s:s, s:s, s:o}", "type", t.name, "subject_kind",
                once_subject_kind_name(t.subject_kind), "purposes",
                purposes));
        else
            json_decref(purposes);
    }
    doc = json_pack("{s:s, s:{s:o, s:I}, s:o, s:o}", "department", self,
                    "directory", "digest",
                    adapter_hex_json(once_directory_digest(dir),
                                     ONCE_DIGEST_BYTES),
                    "issued_at",
                    (json_int_t)once_directory_issued_at(dir), "publish",
                    publish, "request", request);
    dircache_release(c->gw->core.dir);
    http_json(c, 200, doc);
}

static void health_route(http_call *c)
{
    json_t *problems = json_array(), *doc;
    once_client *client;
    once_keypair kp;
    once_error err;
    const once_directory *dir;
    uint64_t age, backoff;
    char detail[512];
    size_t i;
    int rc;

    if (once_keypair_load(&kp, c->gw->cfg.base.key_path, &err) < 0)
        json_array_append_new(problems, json_sprintf("key unreadable: %s",
                                                     err.message));
    once_keypair_wipe(&kp);
    /* A directory refresh failed moments ago: the broker is unreachable
     * until the back-off ends, and a ping would wait a timeout to say so. */
    backoff = dircache_backoff_ms(c->gw->core.dir);
    if (backoff > 0) {
        json_array_append_new(problems, json_sprintf(
            "broker unreachable: the last directory refresh failed, next "
            "attempt in %.1f s", (double)backoff / 1000.0));
    } else {
        client = pool_borrow(c->gw->core.pool);
        rc = once_client_ping(client, &err);
        pool_return(c->gw->core.pool, client, rc == -ONCE_ERR_TIMEOUT);
        broker_answered(rc);
        if (rc < 0)
            json_array_append_new(problems, json_sprintf(
                "broker %s: %s", rc == -ONCE_ERR_TIMEOUT
                                     ? "unreachable"
                                     : "refuses this gateway",
                err.message));
    }
    dir = dircache_get(c->gw->core.dir, false, &err);
    if (dir != NULL)
        dircache_release(c->gw->core.dir);
    age = dircache_age_ms(c->gw->core.dir);
    if (age > ONCE_DIRECTORY_MAX_SKEW_MS)
        json_array_append_new(problems, json_string(
            age == UINT64_MAX ? "directory stale: none received from the "
                                "broker yet"
                              : "directory stale: not confirmed by the "
                                "broker for over 5 minutes"));
    if (json_array_size(problems) == 0) {
        json_decref(problems);
        http_json(c, 200, json_pack("{s:s, s:s, s:s, s:f}", "status", "ok",
                                    "department", c->gw->cfg.base.department,
                                    "broker", "reachable",
                                    "directory_age_seconds",
                                    (double)age / 1000.0));
        return;
    }
    detail[0] = '\0';
    for (i = 0; i < json_array_size(problems); i++)
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail),
                 "%s%s", i > 0 ? "; " : "",
                 json_string_value(json_array_get(problems, i)));
    http_problem(c, 503, "UNAVAILABLE", "%s", detail);
    doc = c->response != NULL ? json_loads(c->response, 0, NULL) : NULL;
    if (doc != NULL) {
        json_object_set_new(doc, "problems", problems);
        problems = NULL;
        free(c->response);
        c->response = json_dumps(doc, JSON_COMPACT);
        c->response_len = c->response != NULL ? strlen(c->response) : 0;
        json_decref(doc);
    }
    json_decref(problems);
    snprintf(c->retry_after, sizeof(c->retry_after), "5");
}

static void document_route(http_call *c, const char *type, char *text,
                           size_t len)
{
    c->status = 200;
    c->content_type = (char *)type;
    c->response = text;
    c->response_len = len;
}

void routes_dispatch(http_call *c)
{
    record_path rp;
    bool get = strcmp(c->method, "GET") == 0;
    char *text;
    size_t len;

    if (strcmp(c->route, "unmatched") == 0) {
        http_problem(c, 404, "NO_ROUTE", "no such resource; the API is "
                     "described at /v1/openapi.yaml");
        return;
    }
    if (strcmp(c->route, "notices") == 0 ||
        strcmp(c->route, "notice_ack") == 0 ||
        strcmp(c->route, "subscriptions") == 0) {
        notices_dispatch(c);
        return;
    }
    if (strcmp(c->route, "publish") == 0 || strcmp(c->route, "revoke") == 0 ||
        strcmp(c->route, "request") == 0) {
        parse_record_path(c->path, &rp);
        if (strcmp(c->route, "publish") == 0)
            write_route(c, &rp);
        else if (strcmp(c->route, "revoke") == 0 &&
                 strcmp(c->method, "POST") == 0)
            write_route(c, &rp);
        else if (strcmp(c->route, "request") == 0 && get)
            request_route(c, &rp);
        else
            http_problem(c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed "
                         "here", c->method);
        return;
    }
    if (!get) {
        http_problem(c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed here",
                     c->method);
        return;
    }
    if (strcmp(c->route, "health") == 0) {
        health_route(c);
    } else if (strcmp(c->route, "catalogue") == 0) {
        catalogue_route(c);
    } else if (strcmp(c->route, "openapi") == 0) {
        text = malloc(gateway_openapi_len);
        if (text == NULL) {
            http_problem(c, 500, "NO_MEMORY", "out of memory");
            return;
        }
        memcpy(text, gateway_openapi, gateway_openapi_len);
        document_route(c, "application/yaml", text, gateway_openapi_len);
    } else {
        text = metrics_render(&len);
        if (text == NULL) {
            http_problem(c, 500, "NO_MEMORY", "out of memory");
            return;
        }
        document_route(c, "text/plain; version=0.0.4", text, len);
    }
}
