/*
 * arena.c - a bump allocator for protobuf-c's unpacking.
 *
 * Decoding one message with protobuf-c's default allocator costs a malloc
 * for the message, each string, each bytes field and each repeated field:
 * dozens for a Publish. A worker decodes every message a department sends,
 * so it hands protobuf-c an arena instead: allocation is a pointer bump in
 * a block the worker keeps, and freeing is resetting the bump after the
 * message is answered. policy.c does the same, with a block on the stack,
 * for each department, type or grant it reads from LMDB.
 *
 * The block has a fixed size, but what a message decodes to is bounded only
 * by the checks before it (wire_check.c bounds what departments send; a
 * stored value was checked when it was written), so what does not fit is
 * malloc'd and chained, never refused: a large but valid message costs
 * mallocs, not an error. arena_reset frees the chain. Every allocation is
 * rounded up to the alignment of max_align_t, as malloc's are.
 */
#include "arena.h"

#include <stdlib.h>

#define ARENA_ALIGN alignof(max_align_t)

void arena_init(arena *a, void *base, size_t size)
{
    a->base = base;
    a->size = size;
    a->used = 0;
    a->overflow = NULL;
}

static void *arena_alloc(void *data, size_t size)
{
    arena *a = data;
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    arena_overflow *o;

    if (rounded >= size && rounded <= a->size - a->used) {
        void *p = a->base + a->used;

        a->used += rounded;
        return p;
    }
    if (size > SIZE_MAX - sizeof(arena_overflow))
        return NULL;
    o = malloc(sizeof(arena_overflow) + size);
    if (o == NULL)
        return NULL;
    o->next = a->overflow;
    a->overflow = o;
    return o->data;
}

/* Everything is released at once by arena_reset. */
static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator arena_allocator(arena *a)
{
    ProtobufCAllocator alloc = {
        .alloc = arena_alloc,
        .free = arena_free,
        .allocator_data = a,
    };

    return alloc;
}

void arena_reset(arena *a)
{
    while (a->overflow != NULL) {
        arena_overflow *next = a->overflow->next;

        free(a->overflow);
        a->overflow = next;
    }
    a->used = 0;
}
