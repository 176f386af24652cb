/*
 * record_disclose.c - handing a signed record on: a copy that keeps the
 * signed header and only some of the disclosures (once_record_disclose,
 * what the broker gives a requester under a grant), and the Publish
 * encoding of a signed record (once_record_serialize, and the view the
 * client packs into a Publish or Revoke body without copying).
 *
 * Neither re-signs or re-encodes the header: the bytes the issuer signed go
 * on unchanged (record.c says why), so the receiver can verify them.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "record_internal.h"
#include "record_layout.h"

/* A new record holding r's header and signature and no disclosures. */
static int copy_signed_header(const once_record *r, once_record **out)
{
    once_record *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -ONCE_ERR_NO_MEMORY;
    c->signing_input = malloc(RECORD_DOMAIN_BYTES + r->header_len);
    if (c->signing_input == NULL) {
        free(c);
        return -ONCE_ERR_NO_MEMORY;
    }
    memcpy(c->signing_input, r->signing_input,
           RECORD_DOMAIN_BYTES + r->header_len);
    c->header_len = r->header_len;
    memcpy(c->signature, r->signature, sizeof(c->signature));
    memcpy(c->type, r->type, sizeof(c->type));
    memcpy(c->subject, r->subject, sizeof(c->subject));
    memcpy(c->issuer, r->issuer, sizeof(c->issuer));
    memcpy(c->reason, r->reason, sizeof(c->reason));
    c->version = r->version;
    c->issued_at = r->issued_at;
    c->valid_from = r->valid_from;
    c->valid_until = r->valid_until;
    c->status = r->status;
    c->n_fields = r->n_fields;
    memcpy(c->fields, r->fields, r->n_fields * sizeof(r->fields[0]));
    *out = c;
    return 0;
}

int once_record_disclose(const once_record *r, const char *const *names,
                         size_t count, once_record **out, once_error *err)
{
    once_record *c;
    size_t i, j;

    if (out == NULL || r == NULL || (names == NULL && count > 0))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a record, names and an output are required");
    *out = NULL;
    for (j = 0; j < count; j++) {
        if (names[j] == NULL)
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "field name %zu is NULL", j + 1);
    }
    if (r->signing_input == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "only a signed record can be disclosed");
    if (copy_signed_header(r, &c) < 0)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    /* Walk the record's disclosures, not the names, so that a name given
     * twice is disclosed once. */
    for (i = 0; i < r->n_disclosures; i++) {
        const record_disclosure *d = &r->disclosures[i];
        record_disclosure *dst = &c->disclosures[c->n_disclosures];

        for (j = 0; j < count; j++) {
            if (strcmp(names[j], d->name) == 0)
                break;
        }
        if (j == count)
            continue;
        if (record_disclosure_set(dst, d->name, d->value, d->len) < 0) {
            once_record_free(c);
            return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
        }
        memcpy(dst->salt, d->salt, sizeof(dst->salt));
        c->n_disclosures++;
    }
    *out = c;
    return 0;
}

int record_publish_view_init(record_publish_view *v, const once_record *r,
                             once_error *err)
{
    size_t i;

    if (r == NULL || r->signing_input == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "only a signed record can be sent");
    once__publish__init(&v->publish);
    once__signed_record__init(&v->record);
    v->record.header.data = r->signing_input + RECORD_DOMAIN_BYTES;
    v->record.header.len = r->header_len;
    v->record.signature.data = (uint8_t *)r->signature;
    v->record.signature.len = ONCE_SIGNATURE_BYTES;
    for (i = 0; i < r->n_disclosures; i++) {
        const record_disclosure *d = &r->disclosures[i];
        Once__Disclosure *w = &v->disclosures[i];

        once__disclosure__init(w);
        w->salt.data = (uint8_t *)d->salt;
        w->salt.len = ONCE_SALT_BYTES;
        w->name = (char *)d->name;
        w->value.data = d->value;
        w->value.len = d->len;
        v->disclosure_ptrs[i] = w;
    }
    v->publish.record = &v->record;
    v->publish.n_disclosures = r->n_disclosures;
    v->publish.disclosures = r->n_disclosures > 0 ? v->disclosure_ptrs : NULL;
    return 0;
}

int once_record_serialize(const once_record *r, uint8_t **buf, size_t *len,
                          once_error *err)
{
    record_publish_view v;
    size_t packed_len;
    int rc;

    if (buf == NULL || len == NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "output pointers are required");
    if ((rc = record_publish_view_init(&v, r, err)) < 0)
        return rc;
    packed_len = once__publish__get_packed_size(&v.publish);
    *buf = malloc(packed_len > 0 ? packed_len : 1);
    if (*buf == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    once__publish__pack(&v.publish, *buf);
    *len = packed_len;
    return 0;
}
