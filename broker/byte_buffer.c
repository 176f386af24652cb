/*
 * byte_buffer.c - a growable byte buffer.
 *
 * Threads keep one across messages (a worker's answer, the writer's
 * errors), so an answer is encoded without a malloc each time; an export
 * builds each file in one before writing it. Growth doubles from 4 KiB, so
 * a buffer that is appended to (an export's bundle of envelopes) costs a
 * logarithmic number of copies, and a size that would wrap the doubling is
 * refused instead of looping or allocating too little.
 *
 * An export's evidence buffer holds raw subjects and field values. Freed
 * memory keeps its bytes, and realloc frees the old block when it moves
 * one, so a buffer marked wipe grows by allocate, copy, wipe, free, and is
 * wiped before it is freed: the process's free memory never holds the
 * evidence it built.
 */
#include "byte_buffer.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define BYTE_BUFFER_MIN_CAP 4096

int byte_buffer_reserve(byte_buffer *b, size_t cap)
{
    size_t grown_cap = b->cap > 0 ? b->cap : BYTE_BUFFER_MIN_CAP;
    uint8_t *grown;

    if (cap <= b->cap)
        return 0;
    if (cap > SIZE_MAX / 2)
        return -1;
    while (grown_cap < cap)
        grown_cap *= 2;
    if (!b->wipe) {
        grown = realloc(b->data, grown_cap);
        if (grown == NULL)
            return -1;
    } else {
        grown = malloc(grown_cap);
        if (grown == NULL)
            return -1;
        if (b->data != NULL) {
            memcpy(grown, b->data, b->cap);
            sodium_memzero(b->data, b->cap);
            free(b->data);
        }
    }
    b->data = grown;
    b->cap = grown_cap;
    return 0;
}

int byte_buffer_append(byte_buffer *b, const void *data, size_t len)
{
    if (len > SIZE_MAX - b->len || byte_buffer_reserve(b, b->len + len) < 0)
        return -1;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void byte_buffer_free(byte_buffer *b)
{
    bool wipe = b->wipe;

    if (wipe && b->data != NULL)
        sodium_memzero(b->data, b->cap);
    free(b->data);
    memset(b, 0, sizeof(*b));
    b->wipe = wipe;
}
