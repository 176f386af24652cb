/*
 * directory.c - the broker's signed directory, department side: fetch it,
 * check it, read it (docs/PROTOCOL.md 4.8).
 *
 * Why a directory. A department that requests a record verifies the
 * issuer's signature itself, so it needs the issuer's public key; an
 * adapter serving many callers also needs to know which types it may
 * publish and which purposes and fields its grants allow. Both live in the
 * broker's policy tables. The broker hands them out signed with its key:
 * broker replies travel over CURVE, which authenticates the broker, but a
 * signed directory can also be cached on disk and handed on, and a forged
 * or replayed one is told apart by its signature and its issued_at.
 *
 * Versions. The directory content (departments, types, this department's
 * grants, in key order) serializes to the same bytes while nothing
 * changes, and its SHA-256 is its version. A department asks with the
 * digest it holds; the broker then leaves the content out and signs only
 * (department, issued_at, digest), which costs one signature. That is how
 * an adapter refreshes often and cheaply.
 *
 * A once_directory is immutable: a refresh makes a new one, so a program
 * can share one between threads and swap it under a lock.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client_internal.h"
#include "digest.h"
#include "directory_signing.h"
#include "envelope.h"
#include "once.pb-c.h"

struct once_directory {
    uint8_t *content;          /* the Directory bytes, as signed */
    size_t content_len;
    Once__Directory *parsed;
    uint8_t digest[ONCE_DIGEST_BYTES];
    uint64_t issued_at;
};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

size_t directory_signing_input(uint8_t out[DIRECTORY_SIGNING_INPUT_MAX],
                               const char *department, uint64_t issued_at,
                               const uint8_t digest[ONCE_DIGEST_BYTES])
{
    size_t n = strlen(department), pos = 0;

    if (n > ONCE_MAX_NAME)
        return 0;
    memcpy(out, DIRECTORY_DOMAIN, DIRECTORY_DOMAIN_BYTES);
    pos += DIRECTORY_DOMAIN_BYTES;
    put_u32(out + pos, (uint32_t)n);
    pos += 4;
    memcpy(out + pos, department, n);
    pos += n;
    put_u64(out + pos, issued_at);
    pos += 8;
    memcpy(out + pos, digest, ONCE_DIGEST_BYTES);
    return pos + ONCE_DIGEST_BYTES;
}

void once_directory_free(once_directory *d)
{
    if (d == NULL)
        return;
    if (d->parsed != NULL)
        once__directory__free_unpacked(d->parsed, NULL);
    free(d->content);
    free(d);
}

/* Every entry the accessors hand out has what they promise: names, and
 * keys of the right size. */
static int content_is_sound(const Once__Directory *p)
{
    size_t i;

    for (i = 0; i < p->n_departments; i++)
        if (p->departments[i]->public_key.len != ONCE_PUBLIC_KEY_BYTES)
            return 0;
    return 1;
}

static int directory_new(once_directory **out, const uint8_t *content,
                         size_t len, const uint8_t digest[ONCE_DIGEST_BYTES],
                         uint64_t issued_at, const char *department,
                         once_error *err)
{
    once_directory *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    d->content = malloc(len > 0 ? len : 1);
    if (d->content == NULL) {
        free(d);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    memcpy(d->content, content, len);
    d->content_len = len;
    memcpy(d->digest, digest, ONCE_DIGEST_BYTES);
    d->issued_at = issued_at;
    d->parsed = once__directory__unpack(NULL, len, content);
    if (d->parsed == NULL || !content_is_sound(d->parsed)) {
        once_directory_free(d);
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the directory's content does not decode");
    }
    if (strcmp(d->parsed->department, department) != 0) {
        once_directory_free(d);
        return once_error_set(err, ONCE_ERR_INVALID_RECORD,
                              "the directory's content was made for "
                              "another department");
    }
    *out = d;
    return 0;
}

int once_directory_verify(once_directory **out, const uint8_t *signed_bytes,
                          size_t len,
                          const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                          const char *department, const once_directory *known,
                          once_error *err)
{
    uint8_t input[DIRECTORY_SIGNING_INPUT_MAX], digest[ONCE_DIGEST_BYTES];
    Once__SignedDirectory *sd;
    uint64_t now, skew;
    size_t input_len;
    int rc;

    if (out == NULL || broker_pk == NULL || department == NULL ||
        (signed_bytes == NULL && len > 0))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "output, bytes, broker key and department "
                              "are required");
    *out = NULL;
    if (len > ONCE_MAX_MESSAGE)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "the directory is over %d bytes",
                              ONCE_MAX_MESSAGE);
    sd = once__signed_directory__unpack(NULL, len, signed_bytes);
    if (sd == NULL)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "the signed directory does not decode");
    if (sd->signature.len != ONCE_SIGNATURE_BYTES ||
        sd->digest.len != ONCE_DIGEST_BYTES ||
        (input_len = directory_signing_input(input, sd->department,
                                             sd->issued_at,
                                             sd->digest.data)) == 0 ||
        crypto_sign_verify_detached(sd->signature.data, input, input_len,
                                    broker_pk) != 0) {
        rc = once_error_set(err, ONCE_ERR_BAD_SIGNATURE,
                            "the directory's signature does not verify with "
                            "the broker's key");
        goto out;
    }
    if (strcmp(sd->department, department) != 0) {
        rc = once_error_set(err, ONCE_ERR_INVALID_RECORD,
                            "the directory was made for another department");
        goto out;
    }
    now = once_now_ms();
    skew = sd->issued_at > now ? sd->issued_at - now : now - sd->issued_at;
    if (skew > ONCE_DIRECTORY_MAX_SKEW_MS ||
        (known != NULL && sd->issued_at < known->issued_at)) {
        rc = once_error_set(err, ONCE_ERR_CLOCK_SKEW,
                            "the directory is stale: issued %llu s %s this "
                            "clock%s", (unsigned long long)(skew / 1000),
                            sd->issued_at > now ? "ahead of" : "behind",
                            known != NULL && sd->issued_at < known->issued_at
                                ? ", before the one already held"
                                : "");
        goto out;
    }
    if (sd->directory.len == 0) {
        /* Unchanged: the signature vouches for the digest we hold. */
        if (known == NULL ||
            sodium_memcmp(known->digest, sd->digest.data,
                          ONCE_DIGEST_BYTES) != 0) {
            rc = once_error_set(err, ONCE_ERR_MALFORMED,
                                "the broker left the directory's content "
                                "out, but it is not the one held");
            goto out;
        }
        rc = directory_new(out, known->content, known->content_len,
                           known->digest, sd->issued_at, department, err);
        goto out;
    }
    digest_sha256(digest, sd->directory.data, sd->directory.len);
    if (sodium_memcmp(digest, sd->digest.data, ONCE_DIGEST_BYTES) != 0) {
        rc = once_error_set(err, ONCE_ERR_INVALID_RECORD,
                            "the directory's content does not match its "
                            "signed digest");
        goto out;
    }
    rc = directory_new(out, sd->directory.data, sd->directory.len, digest,
                       sd->issued_at, department, err);
out:
    once__signed_directory__free_unpacked(sd, NULL);
    return rc;
}

int once_client_directory(once_client *c, const once_directory *known,
                          once_directory **out, once_error *err)
{
    Once__DirectoryRequest q = ONCE__DIRECTORY_REQUEST__INIT;
    uint8_t body[ONCE_DIGEST_BYTES + 8];
    uint8_t *answer = NULL;
    size_t body_len, answer_len = 0;
    int rc;

    if (c == NULL || out == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "client and output are required");
    *out = NULL;
    if (known != NULL) {
        q.known_digest.data = (uint8_t *)known->digest;
        q.known_digest.len = ONCE_DIGEST_BYTES;
    }
    body_len = once__directory_request__pack(&q, body);
    rc = client_call(c, ONCE__KIND__KIND_DIRECTORY_REQUEST, body, body_len,
                     ONCE__KIND__KIND_DIRECTORY, &answer, &answer_len, NULL,
                     err);
    if (rc < 0)
        return rc;
    rc = once_directory_verify(out, answer, answer_len, client_broker_key(c),
                               client_department(c), known, err);
    free(answer);
    return rc;
}

uint64_t once_directory_issued_at(const once_directory *d)
{
    return d->issued_at;
}

const uint8_t *once_directory_digest(const once_directory *d)
{
    return d->digest;
}

size_t once_directory_department_count(const once_directory *d)
{
    return d->parsed->n_departments;
}

size_t once_directory_type_count(const once_directory *d)
{
    return d->parsed->n_types;
}

size_t once_directory_grant_count(const once_directory *d)
{
    return d->parsed->n_grants;
}

static void department_view(const Once__Department *p,
                            once_directory_department *out)
{
    out->id = p->id;
    out->name = p->name;
    out->public_key = p->public_key.data;
    out->active =
        p->status == ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_ACTIVE;
}

int once_directory_department_at(const once_directory *d, size_t i,
                                 once_directory_department *out)
{
    if (d == NULL || out == NULL || i >= d->parsed->n_departments)
        return -ONCE_ERR_INVALID_ARGUMENT;
    department_view(d->parsed->departments[i], out);
    return 0;
}

int once_directory_find_department(const once_directory *d, const char *id,
                                   once_directory_department *out)
{
    size_t i;

    if (d == NULL || id == NULL || out == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    for (i = 0; i < d->parsed->n_departments; i++) {
        if (strcmp(d->parsed->departments[i]->id, id) == 0) {
            department_view(d->parsed->departments[i], out);
            return 0;
        }
    }
    return -ONCE_ERR_UNKNOWN_SENDER;
}

int once_directory_type_at(const once_directory *d, size_t i,
                           once_directory_type *out)
{
    const Once__RecordType *t;

    if (d == NULL || out == NULL || i >= d->parsed->n_types)
        return -ONCE_ERR_INVALID_ARGUMENT;
    t = d->parsed->types[i];
    out->name = t->name;
    out->subject_kind = (once_subject_kind)t->subject_kind;
    out->issuers = (const char *const *)t->issuers;
    out->issuer_count = t->n_issuers;
    out->fields = (const char *const *)t->fields;
    out->field_count = t->n_fields;
    return 0;
}

int once_directory_grant_at(const once_directory *d, size_t i,
                            once_directory_grant *out)
{
    const Once__Grant *g;

    if (d == NULL || out == NULL || i >= d->parsed->n_grants)
        return -ONCE_ERR_INVALID_ARGUMENT;
    g = d->parsed->grants[i];
    out->type = g->type;
    out->purpose = g->purpose;
    out->fields = (const char *const *)g->fields;
    out->field_count = g->n_fields;
    return 0;
}
