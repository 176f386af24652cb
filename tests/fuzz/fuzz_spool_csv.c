/*
 * fuzz_spool_csv.c - the CSV rows of `once-spool import`
 * (adapters/spool/csv.c), on arbitrary bytes.
 *
 * A department's export is outside bytes: no input may crash the parser,
 * read outside the buffer (the input is copied to an exact-size
 * allocation, so ASan sees any overread), hang, or leak. Beyond that:
 * every row accepted moves the position forward and stays within the
 * input, has 1 to CSV_MAX_FIELDS fields, each a NUL-terminated string
 * inside the row's buffer without a NUL of its own and within the field
 * limit; a refusal explains and leaves the position where it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size > 0 ? size : 1);
    csv_row row = { 0 };
    size_t pos = 0, before, i, n;
    once_error err;
    int rc;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    memset(&err, 0, sizeof(err));
    for (;;) {
        before = pos;
        rc = csv_next_row(buf, size, &pos, &row, &err);
        if (rc <= 0) {
            if (pos != before || (rc < 0 && err.message[0] == '\0'))
                abort();
            break;
        }
        if (pos <= before || pos > size || row.count == 0 ||
            row.count > CSV_MAX_FIELDS)
            abort();
        for (i = 0; i < row.count; i++) {
            if (row.field[i] < row.text || row.field[i] >= row.text + row.cap)
                abort();
            n = strlen(row.field[i]);
            if (n > ONCE_MAX_FIELD_VALUE ||
                row.field[i] + n >= row.text + row.cap)
                abort();
        }
    }
    csv_row_clear(&row);
    free(buf);
    return 0;
}
