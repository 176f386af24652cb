/*
 * csv.c - rows of a CSV file (RFC 4180), for `once-spool import`.
 *
 * The file is a department's export of the records it already holds,
 * often millions of rows, so rows are parsed in place from the mapped
 * file into one reused buffer: no allocation per row. RFC 4180 as
 * spreadsheets write it: fields separated by ',', rows ended by LF or
 * CRLF (the last may have neither), a field in double quotes may hold ',',
 * line breaks and '""' for a quote; a quote inside an unquoted field, or
 * anything but ',' or the end of the row after a closing quote, is
 * malformed. A NUL byte is refused anywhere (record fields are text).
 *
 * Limits, checked before anything is written: CSV_MAX_FIELDS fields a
 * row, ONCE_MAX_FIELD_VALUE bytes a field, CSV_MAX_ROW bytes a row.
 * These bytes come from outside: tests/fuzz/fuzz_spool_csv.c drives
 * csv_next_row.
 */
#include <stdlib.h>
#include <string.h>

#include "spool.h"

void csv_row_clear(csv_row *row)
{
    free(row->text);
    memset(row, 0, sizeof(*row));
}

static int malformed(once_error *err, const char *what)
{
    return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "malformed CSV: "
                          "%s", what);
}

/* Room for a row of the remaining bytes (at most CSV_MAX_ROW of them),
 * its fields' NULs included. */
static int reserve(csv_row *row, size_t remaining, once_error *err)
{
    size_t need = (remaining < CSV_MAX_ROW ? remaining : CSV_MAX_ROW) +
                  CSV_MAX_FIELDS + 2;
    char *grown;

    if (row->cap >= need)
        return 0;
    grown = realloc(row->text, need);
    if (grown == NULL)
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    row->text = grown;
    row->cap = need;
    return 0;
}

static bool at_row_end(const char *buf, size_t len, size_t p)
{
    return p == len || buf[p] == '\n' ||
           (buf[p] == '\r' && (p + 1 == len || buf[p + 1] == '\n'));
}

int csv_next_row(const char *buf, size_t len, size_t *pos, csv_row *row,
                 once_error *err)
{
    size_t p = *pos, o = 0, start;
    int rc;

    row->count = 0;
    if (p >= len)
        return 0;
    if ((rc = reserve(row, len - p, err)) < 0)
        return rc;
    for (;;) {
        if (row->count == CSV_MAX_FIELDS)
            return once_error_set(err, ONCE_ERR_TOO_LARGE, "a row has over "
                                  "%d fields", CSV_MAX_FIELDS);
        row->field[row->count] = row->text + o;
        start = o;
        if (p < len && buf[p] == '"') {
            for (p++;; p++) {
                if (p == len)
                    return malformed(err, "a quoted field is not closed");
                if (buf[p] == '"') {
                    if (p + 1 < len && buf[p + 1] == '"') {
                        p++;
                    } else {
                        p++;
                        break;
                    }
                }
                if (buf[p] == '\0')
                    return malformed(err, "a NUL byte");
                if (p - *pos >= CSV_MAX_ROW)
                    goto too_large;
                row->text[o++] = buf[p];
            }
            if (p < len && buf[p] != ',' && !at_row_end(buf, len, p))
                return malformed(err, "text after a closing quote");
        } else {
            for (; p < len && buf[p] != ',' && !at_row_end(buf, len, p);
                 p++) {
                if (buf[p] == '"')
                    return malformed(err, "a quote inside an unquoted "
                                     "field");
                if (buf[p] == '\0')
                    return malformed(err, "a NUL byte");
                if (p - *pos >= CSV_MAX_ROW)
                    goto too_large;
                row->text[o++] = buf[p];
            }
        }
        if (o - start > ONCE_MAX_FIELD_VALUE)
            return once_error_set(err, ONCE_ERR_TOO_LARGE, "a field is over "
                                  "%d bytes", ONCE_MAX_FIELD_VALUE);
        row->text[o++] = '\0';
        row->count++;
        if (p < len && buf[p] == ',') {
            p++;
            continue;
        }
        break;
    }
    if (p < len && buf[p] == '\r')
        p++;
    if (p < len && buf[p] == '\n')
        p++;
    *pos = p;
    return 1;
too_large:
    return once_error_set(err, ONCE_ERR_TOO_LARGE, "a row is over %d bytes",
                          CSV_MAX_ROW);
}
