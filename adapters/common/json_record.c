/*
 * json_record.c - JSON bodies of the adapters turned into records.
 *
 * PUT /v1/records/{type}/{subject} carries
 *     {"fields": {"name": "value", ...}, "version": 3,
 *      "valid_from": "2026-01-01", "valid_until": "2030-12-31T00:00:00Z"}
 * and POST .../revocations carries {"reason": "...", "version": 4}, the
 * reason signed into the revocation's header (PROTOCOL.md 4.2); a file
 * in once-spool's outbox/ is the publish body with "type" and "subject"
 * added (the spool takes those two out and hands over the rest,
 * json_publish_object). The bytes come from the department's own
 * systems, but the adapters treat them as any outside bytes: jansson
 * parses them (duplicate members refused), every member is checked for
 * its type and range, an unknown member is refused rather than ignored (a
 * misspelt "valid_untill" must not publish a record without an end), and
 * the refusal names the member at fault so the answer (HTTP, or the
 * spool's problem.json) can say which. Field names and values then go
 * through libonce's own checks (once_record_add_text), which are the
 * broker's. This is the path the fuzz targets tests/fuzz/
 * fuzz_gateway_json.c and fuzz_spool_file.c drive.
 *
 * Values are JSON strings; a record's fields are text. Dates are UTC,
 * "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ", and become Unix milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

/* Names member in where and sets err from fmt, whose one %s is member. */
static int refuse(once_error *err, char *where, size_t where_cap,
                  const char *member, int code, const char *fmt)
{
    snprintf(where, where_cap, "%s", member);
    return once_error_set(err, code, fmt, member);
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" to Unix ms; -1 when not one. */
static int parse_date(const char *text, uint64_t *out)
{
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    size_t len = strlen(text);
    struct tm tm;
    time_t t;

    if (len == 10) {
        if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
            return -1;
    } else if (len == 20) {
        if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi,
                   &s, &n) != 6 || n != 20)
            return -1;
    } else {
        return -1;
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
        h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    t = timegm(&tm);
    /* timegm normalises 2026-02-31 to March: refuse such dates. */
    if (t < 0 || tm.tm_mday != d || tm.tm_mon != mo - 1)
        return -1;
    *out = (uint64_t)t * 1000u;
    return 0;
}

static int load_object(const char *body, size_t len, json_t **out,
                       char *where, size_t where_cap, once_error *err)
{
    json_error_t jerr;

    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL) {
        snprintf(where, where_cap, "body");
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the body is not JSON: %s (line %d, column "
                              "%d)", jerr.text, jerr.line, jerr.column);
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        snprintf(where, where_cap, "body");
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "the body must be a JSON object");
    }
    return 0;
}

/* The optional "version": a positive integer, else default_version. */
static int read_version(json_t *doc, uint64_t default_version,
                        uint64_t *version, char *where, size_t where_cap,
                        once_error *err)
{
    json_t *v = json_object_get(doc, "version");

    *version = default_version;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return refuse(err, where, where_cap, "version",
                      ONCE_ERR_INVALID_ARGUMENT,
                      "%s must be a positive integer");
    *version = (uint64_t)json_integer_value(v);
    return 0;
}

static int read_date(json_t *doc, const char *member, uint64_t *out,
                     char *where, size_t where_cap, once_error *err)
{
    json_t *v = json_object_get(doc, member);

    *out = 0;
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || parse_date(json_string_value(v), out) < 0)
        return refuse(err, where, where_cap, member,
                      ONCE_ERR_INVALID_ARGUMENT,
                      "%s must be a date, YYYY-MM-DD or "
                      "YYYY-MM-DDTHH:MM:SSZ (UTC)");
    return 0;
}

/* Every member of doc is one of allowed (NULL-terminated). */
static int only_members(json_t *doc, const char *const *allowed,
                        char *where, size_t where_cap, once_error *err)
{
    const char *name;
    json_t *value;
    size_t i;

    json_object_foreach(doc, name, value) {
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(name, allowed[i]) == 0)
                break;
        if (allowed[i] == NULL) {
            snprintf(where, where_cap, "%.60s", name[0] ? name : "\"\"");
            return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                                  "%s is not a member of this body", where);
        }
    }
    return 0;
}

int json_publish_record(const char *body, size_t len, const char *type,
                        const char *subject, const char *issuer,
                        uint64_t default_version, once_record **out,
                        char *where, size_t where_cap, once_error *err)
{
    json_t *doc;
    int rc;

    *out = NULL;
    where[0] = '\0';
    if ((rc = load_object(body, len, &doc, where, where_cap, err)) < 0)
        return rc;
    rc = json_publish_object(doc, type, subject, issuer, default_version, out,
                             where, where_cap, err);
    json_decref(doc);
    return rc;
}

int json_publish_object(json_t *doc, const char *type, const char *subject,
                        const char *issuer, uint64_t default_version,
                        once_record **out, char *where, size_t where_cap,
                        once_error *err)
{
    static const char *const allowed[] = { "fields", "version", "valid_from",
                                           "valid_until", NULL };
    uint64_t version, valid_from, valid_until;
    once_record *r = NULL;
    const char *name;
    json_t *fields, *value;
    char member[ONCE_MAX_NAME + 16];
    int rc;

    *out = NULL;
    where[0] = '\0';
    if ((rc = only_members(doc, allowed, where, where_cap, err)) < 0 ||
        (rc = read_version(doc, default_version, &version, where, where_cap,
                           err)) < 0 ||
        (rc = read_date(doc, "valid_from", &valid_from, where, where_cap,
                        err)) < 0 ||
        (rc = read_date(doc, "valid_until", &valid_until, where, where_cap,
                        err)) < 0)
        goto out;
    fields = json_object_get(doc, "fields");
    if (!json_is_object(fields) || json_object_size(fields) == 0) {
        rc = refuse(err, where, where_cap, "fields",
                    ONCE_ERR_INVALID_ARGUMENT,
                    "%s must be an object of at least one field name and "
                    "its text value");
        goto out;
    }
    if (valid_until != 0 && valid_until < valid_from) {
        rc = refuse(err, where, where_cap, "valid_until",
                    ONCE_ERR_INVALID_ARGUMENT,
                    "%s must not be before valid_from");
        goto out;
    }
    rc = once_record_new(&r, type, subject, version, issuer, valid_from,
                         valid_until, err);
    if (rc < 0) {
        snprintf(where, where_cap, "path");
        goto out;
    }
    json_object_foreach(fields, name, value) {
        snprintf(member, sizeof(member), "fields.%.*s", ONCE_MAX_NAME, name);
        if (!json_is_string(value)) {
            rc = refuse(err, where, where_cap, member,
                        ONCE_ERR_INVALID_ARGUMENT,
                        "%s must be a string");
            goto out;
        }
        if (strlen(name) > ONCE_MAX_NAME ||
            json_string_length(value) != strlen(json_string_value(value))) {
            rc = refuse(err, where, where_cap, member,
                        ONCE_ERR_INVALID_ARGUMENT,
                        "%s: the name is over 64 characters or the value "
                        "holds a NUL character");
            goto out;
        }
        rc = once_record_add_text(r, name, json_string_value(value), err);
        if (rc < 0) {
            snprintf(where, where_cap, "%s", member);
            goto out;
        }
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    once_record_free(r);
    return rc;
}

int json_revocation_record(const char *body, size_t len, const char *type,
                           const char *subject, const char *issuer,
                           uint64_t default_version, once_record **out,
                           char **reason, char *where, size_t where_cap,
                           once_error *err)
{
    static const char *const allowed[] = { "reason", "version", NULL };
    uint64_t version;
    const char *text;
    json_t *doc, *r;
    int rc;

    *out = NULL;
    *reason = NULL;
    where[0] = '\0';
    if ((rc = load_object(body, len, &doc, where, where_cap, err)) < 0)
        return rc;
    if ((rc = only_members(doc, allowed, where, where_cap, err)) < 0 ||
        (rc = read_version(doc, default_version, &version, where, where_cap,
                           err)) < 0)
        goto out;
    r = json_object_get(doc, "reason");
    text = json_string_value(r);
    /* A NUL inside the JSON string would cut the C string short; the
     * text rules and the size are libonce's (the broker's). */
    if (text == NULL || text[0] == '\0' ||
        json_string_length(r) != strlen(text)) {
        rc = refuse(err, where, where_cap, "reason",
                    ONCE_ERR_INVALID_ARGUMENT,
                    "%s must be 1 to 256 bytes of text without control "
                    "characters");
        goto out;
    }
    rc = once_record_new_revocation_reason(out, type, subject, version,
                                           issuer, text, err);
    if (rc == -ONCE_ERR_INVALID_TEXT || rc == -ONCE_ERR_TOO_LARGE) {
        rc = refuse(err, where, where_cap, "reason",
                    ONCE_ERR_INVALID_ARGUMENT,
                    "%s must be 1 to 256 bytes of text without control "
                    "characters");
        goto out;
    }
    if (rc < 0) {
        snprintf(where, where_cap, "path");
        goto out;
    }
    *reason = strdup(text);
    if (*reason == NULL) {
        once_record_free(*out);
        *out = NULL;
        rc = once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
out:
    json_decref(doc);
    return rc;
}
