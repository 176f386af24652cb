/*
 * directory.c - the broker's signed directory (docs/PROTOCOL.md 4.8).
 *
 * A department's adapter verifies the records it requests with their
 * issuers' keys, and tells its own callers what they may publish and for
 * which purposes they may request what. All of it is in policy.c's tables;
 * this module reads them in the worker's read transaction, so a change made
 * with oncectl shows in the next answer, and signs the result with the
 * broker key.
 *
 * The content (a Directory: the department it is for, every department,
 * every type, that department's grants) is built from lists walked in key
 * order, so the same tables give the same bytes and their SHA-256 is the
 * directory's version. When the request names the digest the department
 * already holds, the content is left out and only (department, issued_at,
 * digest) is signed: a poll costs one signature and a few hundred bytes.
 * Grants of other departments are never in it: who may read what is each
 * department's own business.
 *
 * Directory requests are not exchanges of records: they are not logged
 * (like pings), and any active department may ask.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "digest.h"
#include "directory.h"
#include "envelope.h"
#include "once.pb-c.h"
#include "policy.h"
#include "wire_schema.h"
#include "directory_signing.h"

/* One listed entry with the protobuf view that points into it. */
typedef struct dir_department {
    department d;
    Once__Department msg;
} dir_department;

typedef struct dir_type {
    record_type t;
    char *issuers[POLICY_MAX_ISSUERS];
    char *fields[ONCE_MAX_FIELDS];
    Once__RecordType msg;
} dir_type;

typedef struct dir_grant {
    grant g;
    char *fields[ONCE_MAX_FIELDS];
    Once__Grant msg;
} dir_grant;

typedef struct dir_lists {
    const char *department;
    dir_department *departments;
    size_t n_departments, cap_departments;
    dir_type *types;
    size_t n_types, cap_types;
    dir_grant *grants;
    size_t n_grants, cap_grants;
    size_t bytes; /* what the entries take, to stop before a message is full */
} dir_lists;

/* Makes room for one more entry of size each in *array. */
static int grow(void **array, size_t *cap, size_t n, size_t each,
                dir_lists *l)
{
    void *grown;
    size_t want;

    l->bytes += each;
    if (l->bytes > 64 * (size_t)ONCE_MAX_MESSAGE)
        return -ONCE_ERR_TOO_LARGE;
    if (n < *cap)
        return 0;
    want = *cap == 0 ? 16 : *cap * 2;
    grown = realloc(*array, want * each);
    if (grown == NULL)
        return -ONCE_ERR_NO_MEMORY;
    *array = grown;
    *cap = want;
    return 0;
}

static int add_department(const department *d, void *arg)
{
    dir_lists *l = arg;
    int rc = grow((void **)&l->departments, &l->cap_departments,
                  l->n_departments, sizeof(dir_department), l);

    if (rc < 0)
        return rc;
    l->departments[l->n_departments++].d = *d;
    return 0;
}

static int add_type(const record_type *t, void *arg)
{
    dir_lists *l = arg;
    int rc = grow((void **)&l->types, &l->cap_types, l->n_types,
                  sizeof(dir_type), l);

    if (rc < 0)
        return rc;
    l->types[l->n_types++].t = *t;
    return 0;
}

static int add_grant(const grant *g, void *arg)
{
    dir_lists *l = arg;
    int rc;

    if (strcmp(g->requester, l->department) != 0)
        return 0;
    rc = grow((void **)&l->grants, &l->cap_grants, l->n_grants,
              sizeof(dir_grant), l);
    if (rc < 0)
        return rc;
    l->grants[l->n_grants++].g = *g;
    return 0;
}

static void lists_free(dir_lists *l)
{
    free(l->departments);
    free(l->types);
    free(l->grants);
}

/* Points the protobuf views into the entries (after the arrays stopped
 * moving) and serializes the Directory into *out. */
static int pack_content(dir_lists *l, uint8_t **out, size_t *len)
{
    Once__Directory dir = ONCE__DIRECTORY__INIT;
    Once__Department **deps = NULL;
    Once__RecordType **types = NULL;
    Once__Grant **grants = NULL;
    size_t i, k;
    int rc = -ONCE_ERR_NO_MEMORY;

    deps = calloc(l->n_departments + 1, sizeof(*deps));
    types = calloc(l->n_types + 1, sizeof(*types));
    grants = calloc(l->n_grants + 1, sizeof(*grants));
    if (deps == NULL || types == NULL || grants == NULL)
        goto out;
    for (i = 0; i < l->n_departments; i++) {
        dir_department *e = &l->departments[i];

        once__department__init(&e->msg);
        e->msg.id = e->d.id;
        e->msg.name = e->d.name;
        e->msg.public_key.data = e->d.public_key;
        e->msg.public_key.len = ONCE_PUBLIC_KEY_BYTES;
        e->msg.status = e->d.status == DEPARTMENT_ACTIVE
            ? ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_ACTIVE
            : ONCE__DEPARTMENT_STATUS__DEPARTMENT_STATUS_SUSPENDED;
        e->msg.created_at = e->d.created_at;
        e->msg.changed_at = e->d.changed_at;
        deps[i] = &e->msg;
    }
    for (i = 0; i < l->n_types; i++) {
        dir_type *e = &l->types[i];

        once__record_type__init(&e->msg);
        e->msg.name = e->t.name;
        for (k = 0; k < e->t.issuer_count; k++)
            e->issuers[k] = e->t.issuers[k];
        for (k = 0; k < e->t.field_count; k++)
            e->fields[k] = e->t.fields[k];
        e->msg.issuers = e->issuers;
        e->msg.n_issuers = e->t.issuer_count;
        e->msg.subject_kind = (Once__SubjectKind)e->t.subject_kind;
        e->msg.fields = e->fields;
        e->msg.n_fields = e->t.field_count;
        e->msg.created_at = e->t.created_at;
        types[i] = &e->msg;
    }
    for (i = 0; i < l->n_grants; i++) {
        dir_grant *e = &l->grants[i];

        once__grant__init(&e->msg);
        e->msg.requester = e->g.requester;
        e->msg.type = e->g.type;
        e->msg.purpose = e->g.purpose;
        for (k = 0; k < e->g.field_count; k++)
            e->fields[k] = e->g.fields[k];
        e->msg.fields = e->fields;
        e->msg.n_fields = e->g.field_count;
        e->msg.created_at = e->g.created_at;
        grants[i] = &e->msg;
    }
    dir.department = (char *)l->department;
    dir.departments = deps;
    dir.n_departments = l->n_departments;
    dir.types = types;
    dir.n_types = l->n_types;
    dir.grants = grants;
    dir.n_grants = l->n_grants;
    *len = once__directory__get_packed_size(&dir);
    if (*len > ONCE_MAX_MESSAGE - 1024) {
        rc = -ONCE_ERR_TOO_LARGE;
        goto out;
    }
    *out = malloc(*len > 0 ? *len : 1);
    if (*out == NULL)
        goto out;
    once__directory__pack(&dir, *out);
    rc = 0;
out:
    free(deps);
    free(types);
    free(grants);
    return rc;
}

int directory_answer(MDB_txn *txn, const store *s, const once_keypair *key,
                     const char *department, const uint8_t *body,
                     size_t body_len, uint8_t **out, size_t *out_len,
                     once_error *err)
{
    Once__SignedDirectory sd = ONCE__SIGNED_DIRECTORY__INIT;
    uint8_t input[DIRECTORY_SIGNING_INPUT_MAX];
    uint8_t digest[ONCE_DIGEST_BYTES], signature[ONCE_SIGNATURE_BYTES];
    Once__DirectoryRequest *q;
    dir_lists lists = { .department = department };
    uint8_t *content = NULL;
    size_t content_len = 0, input_len;
    int rc;

    *out = NULL;
    /* Only the fields once.proto gives it, like every body (wire_check). */
    if ((rc = wire_check(body, body_len, &wire_directory_request, err)) < 0)
        return rc;
    q = once__directory_request__unpack(NULL, body_len, body);
    if (q == NULL || (q->known_digest.len != 0 &&
                      q->known_digest.len != ONCE_DIGEST_BYTES)) {
        if (q != NULL)
            once__directory_request__free_unpacked(q, NULL);
        return once_error_set(err, ONCE_ERR_MALFORMED, "the directory "
                              "request does not decode, or its digest is "
                              "not %d bytes", ONCE_DIGEST_BYTES);
    }
    if ((rc = policy_department_list(txn, s, add_department, &lists,
                                     err)) != 0 ||
        (rc = policy_type_list(txn, s, add_type, &lists, err)) != 0 ||
        (rc = policy_grant_list(txn, s, add_grant, &lists, err)) != 0 ||
        (rc = pack_content(&lists, &content, &content_len)) < 0) {
        if (rc == -ONCE_ERR_TOO_LARGE)
            rc = once_error_set(err, rc, "the directory is over the "
                                "message limit of %d bytes",
                                ONCE_MAX_MESSAGE);
        else if (rc == -ONCE_ERR_NO_MEMORY)
            rc = once_error_set(err, ONCE_ERR_INTERNAL, "out of memory for "
                                "the directory");
        goto out;
    }
    digest_sha256(digest, content, content_len);
    sd.digest.data = digest;
    sd.digest.len = sizeof(digest);
    sd.issued_at = once_now_ms();
    sd.department = (char *)department;
    if (q->known_digest.len == 0 ||
        sodium_memcmp(q->known_digest.data, digest, sizeof(digest)) != 0) {
        sd.directory.data = content;
        sd.directory.len = content_len;
    }
    input_len = directory_signing_input(input, department, sd.issued_at,
                                        digest);
    if (input_len == 0 ||
        crypto_sign_detached(signature, NULL, input, input_len,
                             key->secret_key) != 0) {
        rc = once_error_set(err, ONCE_ERR_INTERNAL, "cannot sign the "
                            "directory");
        goto out;
    }
    sd.signature.data = signature;
    sd.signature.len = sizeof(signature);
    *out_len = once__signed_directory__get_packed_size(&sd);
    *out = malloc(*out_len);
    if (*out == NULL) {
        rc = once_error_set(err, ONCE_ERR_INTERNAL, "out of memory for the "
                            "directory");
        goto out;
    }
    once__signed_directory__pack(&sd, *out);
    rc = 0;
out:
    once__directory_request__free_unpacked(q, NULL);
    free(content);
    lists_free(&lists);
    return rc;
}
