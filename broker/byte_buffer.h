/*
 * byte_buffer.h - the broker's one growable byte buffer: the answers a
 * thread encodes (reply.c and the workers), the files an export builds
 * (export.c). See byte_buffer.c.
 */
#ifndef ONCE_BYTE_BUFFER_H
#define ONCE_BYTE_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct byte_buffer {
    uint8_t *data;
    size_t len;
    size_t cap;
    /* Holds personal data (evidence): every block it lets go of, on growth
     * and at byte_buffer_free, is wiped first. Set by the owner. */
    bool wipe;
} byte_buffer;

/* Makes data hold at least cap bytes, keeping the ones it holds. Returns 0,
 * or -1 when cap is too large to grow to or memory runs out (b unchanged). */
int byte_buffer_reserve(byte_buffer *b, size_t cap);

/* Appends data[0..len) after b->len. Returns 0, or -1 as
 * byte_buffer_reserve (b unchanged). */
int byte_buffer_append(byte_buffer *b, const void *data, size_t len);

/* Frees data (wiped first when b->wipe) and empties b, keeping b->wipe. */
void byte_buffer_free(byte_buffer *b);

#endif
