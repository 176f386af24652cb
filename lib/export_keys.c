/*
 * export_keys.c - keys.txt, the department keys of a log export.
 *
 * An auditor checks each piece of evidence with the key of the department
 * that signed it, and the export brings those keys along as text, one line
 * per key:
 *
 *     # comments
 *     <id> <public key, 64 hex> <valid from> <valid until> <status> <name...>
 *
 * The file is not signed by the broker (the auditor compares each key with
 * the department's own, and may write the file by hand from those), so it
 * is outside bytes like the rest of the export. Reading it strictly matters
 * more than for most text: a line read wrong puts a wrong key or a wrong
 * validity window behind every verdict on that department's evidence. So
 * the id must be a department id, the times are plain decimals (no sign
 * that wraps around, no overflow), the key is exactly 64 hex digits, and a
 * line that is anything else is reported as malformed by its number, not
 * skipped in silence. The name is for people and is kept as it is, but a
 * control character in it is refused: it could rewrite the auditor's
 * terminal, and the writer never puts one there.
 *
 * Hand-written files are allowed some slack the exporter never needs: runs
 * of spaces or tabs between fields, and "\r\n" line ends.
 *
 * The writer and the reader are both here, so that what the broker exports
 * is by construction what once-audit reads.
 */
#include "export_keys.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "record_internal.h"
#include "text_fields.h"

#define KEY_HEX_CHARS (2 * ONCE_PUBLIC_KEY_BYTES)

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_control(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

/* The next field of [*p, end): the bytes up to the next blank, after the
 * blanks in front of it. Empty at the end of the line. */
static void next_field(const char **p, const char *end, const char **field,
                       size_t *field_len)
{
    const char *s = *p;

    while (s < end && is_blank(*s))
        s++;
    *field = s;
    while (s < end && !is_blank(*s))
        s++;
    *field_len = (size_t)(s - *field);
    *p = s;
}

int export_keys_line_parse(const char *line, size_t len, export_key *out,
                           once_error *err)
{
    const char *p = line, *end, *id, *hex, *from, *until, *status;
    size_t id_len, hex_len, from_len, until_len, status_len, i;
    char hex_text[KEY_HEX_CHARS + 1];
    export_key k;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    end = line + len;
    memset(&k, 0, sizeof(k));
    next_field(&p, end, &id, &id_len);
    next_field(&p, end, &hex, &hex_len);
    next_field(&p, end, &from, &from_len);
    next_field(&p, end, &until, &until_len);
    next_field(&p, end, &status, &status_len);
    if (id_len == 0 || id_len > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "malformed: no valid department id");
    memcpy(k.id, id, id_len);
    /* A NUL in the field would otherwise cut it to a valid id. */
    if (strlen(k.id) != id_len || !record_name_is_valid(k.id))
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "malformed: no valid department id");
    if (hex_len == 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "malformed: no public key");
    if (text_parse_u64(from, from_len, &k.valid_from) < 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "malformed: valid-from is not a decimal time");
    if (text_parse_u64(until, until_len, &k.valid_until) < 0)
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "malformed: valid-until is not a decimal time");
    if (status_len == 6 && memcmp(status, "active", 6) == 0)
        k.suspended = false;
    else if (status_len == 9 && memcmp(status, "suspended", 9) == 0)
        k.suspended = true;
    else
        return once_error_set(err, ONCE_ERR_MALFORMED,
                              "malformed: the status is neither active nor "
                              "suspended");
    while (p < end && is_blank(*p))
        p++;
    for (i = 0; p + i < end; i++)
        if (is_control(p[i]))
            return once_error_set(err, ONCE_ERR_MALFORMED,
                                  "malformed: the name holds a control "
                                  "character");
    k.name = p;
    k.name_len = (size_t)(end - p);
    /* Last, so that a line malformed elsewhere is reported as malformed. */
    if (hex_len != KEY_HEX_CHARS)
        return once_error_set(err, ONCE_ERR_MALFORMED, "bad public key");
    memcpy(hex_text, hex, KEY_HEX_CHARS);
    hex_text[KEY_HEX_CHARS] = '\0';
    if (once_hex_decode(k.public_key, ONCE_PUBLIC_KEY_BYTES, hex_text) < 0)
        return once_error_set(err, ONCE_ERR_MALFORMED, "bad public key");
    *out = k;
    return 0;
}

int export_keys_line_format(const export_key *k, char *out, size_t cap,
                            once_error *err)
{
    char hex[KEY_HEX_CHARS + 1];
    size_t len, i;
    int n;

    if (!record_name_is_valid(k->id))
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                              "a department id is 1..%d characters of "
                              "[a-z0-9._-]", ONCE_MAX_NAME);
    once_hex_encode(hex, k->public_key, ONCE_PUBLIC_KEY_BYTES);
    n = snprintf(out, cap, "%s %s %" PRIu64 " %" PRIu64 " %s ", k->id, hex,
                 k->valid_from, k->valid_until,
                 k->suspended ? "suspended" : "active");
    /* Room for the name, the newline and the NUL, and a length an int
     * can return. */
    if (n < 0 || (size_t)n >= cap || k->name_len >= cap - (size_t)n - 1 ||
        k->name_len > (size_t)INT_MAX - (size_t)n - 1)
        return once_error_set(err, ONCE_ERR_TOO_LARGE,
                              "key line of department %s does not fit in "
                              "%zu bytes", k->id, cap);
    len = (size_t)n;
    for (i = 0; i < k->name_len; i++)
        out[len++] = is_control(k->name[i]) ? '?' : k->name[i];
    out[len++] = '\n';
    out[len] = '\0';
    return (int)len;
}

int export_keys_parse(const char *text, size_t len, export_keys_fn fn,
                      void *arg)
{
    const char *p = text, *end = text + len, *line, *nl;
    size_t line_len, line_number = 0;
    once_error problem;
    export_key key;
    int rc;

    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        line = p;
        line_len = (size_t)((nl != NULL ? nl : end) - p);
        p = nl != NULL ? nl + 1 : end;
        line_number++;
        /* A blank line of a file saved with CRLF endings is a lone CR. */
        if (line_len == 0 || line[0] == '#' ||
            (line_len == 1 && line[0] == '\r'))
            continue;
        if (export_keys_line_parse(line, line_len, &key, &problem) < 0)
            rc = fn(arg, line_number, NULL, &problem);
        else
            rc = fn(arg, line_number, &key, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}
