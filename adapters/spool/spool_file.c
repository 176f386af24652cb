/*
 * spool_file.c - the JSON in the files a department system puts in the
 * spool.
 *
 * An outbox/ file is the gateway's publish body with the two members the
 * gateway takes from the URL:
 *     {"type": "business-licence", "subject": "91110108MA0000001D",
 *      "fields": {"name": "Acme Ltd"}, "version": 3,
 *      "valid_from": "2026-01-01"}
 * type and subject are read and taken out here; the rest goes through the
 * gateway's own parser (json_publish_object, adapters/common/
 * json_record.c), so both adapters accept exactly the same records.
 *
 * A requests/ file names what to ask the broker:
 *     {"type": "business-licence", "subject": "91110108MA0000001D",
 *      "purpose": "tax-registration", "case_id": "TAX-2026-000123",
 *      "user": "zhang.wei", "version": 2, "proof": true}
 * user (the official who asks, as the gateway's Once-User header: signed
 * into the request and logged with it), version (default: the latest) and
 * proof (default false) are optional.
 *
 * One JSON object a file; JSON Lines are not taken (jansson refuses
 * anything after the object): one file is one record or one request, so
 * it ends in sent/ or failed/ as a whole. Like the gateway, duplicate and
 * unknown members are refused, every member is checked for its type and
 * length, and a refusal names the member at fault (where), which the
 * spool writes into the problem.json beside the failed file. These bytes
 * come from outside: tests/fuzz/fuzz_spool_file.c drives both parsers.
 */
#include <stdio.h>
#include <string.h>

#include "spool.h"

static int refuse(once_error *err, char *where, size_t where_cap,
                  const char *member, const char *fmt)
{
    snprintf(where, where_cap, "%s", member);
    return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, fmt, member);
}

static json_t *load(const char *data, size_t len, char *where,
                    size_t where_cap, once_error *err)
{
    json_error_t jerr;
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);

    if (doc == NULL) {
        snprintf(where, where_cap, "file");
        once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "the file is not one "
                       "JSON object: %s (line %d, column %d)", jerr.text,
                       jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        snprintf(where, where_cap, "file");
        once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "the file must hold "
                       "a JSON object");
        return NULL;
    }
    return doc;
}

/* The string member name of doc, 1 to max bytes without NUL, into out. */
static int text_member(json_t *doc, const char *name, size_t max, char *out,
                       char *where, size_t where_cap, once_error *err)
{
    json_t *v = json_object_get(doc, name);
    size_t n = json_string_length(v);

    if (!json_is_string(v) || n == 0 || n > max ||
        strlen(json_string_value(v)) != n)
        return refuse(err, where, where_cap, name, "%s must be a non-empty "
                      "string within the protocol's length limit");
    memcpy(out, json_string_value(v), n + 1);
    return 0;
}

int spool_parse_record(const char *data, size_t len, const char *issuer,
                       uint64_t default_version, once_record **out,
                       char *where, size_t where_cap, once_error *err)
{
    char type[ONCE_MAX_NAME + 1], subject[ONCE_MAX_SUBJECT + 1];
    json_t *doc;
    int rc;

    *out = NULL;
    where[0] = '\0';
    if ((doc = load(data, len, where, where_cap, err)) == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    if ((rc = text_member(doc, "type", ONCE_MAX_NAME, type, where, where_cap,
                          err)) == 0 &&
        (rc = text_member(doc, "subject", ONCE_MAX_SUBJECT, subject, where,
                          where_cap, err)) == 0) {
        json_object_del(doc, "type");
        json_object_del(doc, "subject");
        rc = json_publish_object(doc, type, subject, issuer, default_version,
                                 out, where, where_cap, err);
        if (rc < 0 && strcmp(where, "path") == 0)
            snprintf(where, where_cap, "type or subject");
    }
    json_decref(doc);
    return rc;
}

int spool_parse_request(const char *data, size_t len, spool_request *out,
                        char *where, size_t where_cap, once_error *err)
{
    static const char *const allowed[] = { "type", "subject", "purpose",
                                           "case_id", "user", "version",
                                           "proof", NULL };
    const char *name;
    json_t *doc, *value;
    size_t i;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    where[0] = '\0';
    if ((doc = load(data, len, where, where_cap, err)) == NULL)
        return -ONCE_ERR_INVALID_ARGUMENT;
    json_object_foreach(doc, name, value) {
        for (i = 0; allowed[i] != NULL && strcmp(name, allowed[i]) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            snprintf(where, where_cap, "%.60s", name[0] ? name : "\"\"");
            rc = once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s is not a "
                                "member of a request", where);
            goto out;
        }
    }
    if ((rc = text_member(doc, "type", ONCE_MAX_NAME, out->type, where,
                          where_cap, err)) < 0 ||
        (rc = text_member(doc, "subject", ONCE_MAX_SUBJECT, out->subject,
                          where, where_cap, err)) < 0 ||
        (rc = text_member(doc, "purpose", ONCE_MAX_PURPOSE, out->purpose,
                          where, where_cap, err)) < 0 ||
        (rc = text_member(doc, "case_id", ONCE_MAX_CASE_ID, out->case_id,
                          where, where_cap, err)) < 0 ||
        (json_object_get(doc, "user") != NULL &&
         (rc = text_member(doc, "user", ONCE_MAX_USER, out->user, where,
                           where_cap, err)) < 0))
        goto out;
    value = json_object_get(doc, "version");
    if (value != NULL) {
        if (!json_is_integer(value) || json_integer_value(value) < 1) {
            rc = refuse(err, where, where_cap, "version",
                        "%s must be a positive integer");
            goto out;
        }
        out->version = (uint64_t)json_integer_value(value);
    }
    value = json_object_get(doc, "proof");
    if (value != NULL && !json_is_boolean(value)) {
        rc = refuse(err, where, where_cap, "proof",
                    "%s must be true or false");
        goto out;
    }
    out->want_proof = json_is_true(value);
out:
    json_decref(doc);
    return rc;
}
