/*
 * arena.h - the broker's one bump allocator for protobuf-c, used by the
 * workers (a heap block per worker, kept across messages) and by policy.c
 * (a block on the stack per stored value decoded). See arena.c.
 */
#ifndef ONCE_ARENA_H
#define ONCE_ARENA_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* What did not fit in the block: malloc'd, freed at arena_reset. */
typedef struct arena_overflow {
    struct arena_overflow *next;
    max_align_t data[];
} arena_overflow;

typedef struct arena {
    uint8_t *base; /* the caller's block, aligned for max_align_t */
    size_t size;
    size_t used;
    arena_overflow *overflow;
} arena;

/* Makes a an empty arena over base[0..size), which the caller owns and
 * keeps while a is used; base must be aligned for max_align_t. */
void arena_init(arena *a, void *base, size_t size);

/* A protobuf-c allocator that takes from a. Its free does nothing: what a
 * message decoded into a holds is given back, all at once, by
 * arena_reset. */
ProtobufCAllocator arena_allocator(arena *a);

/* Frees the overflow and makes the whole block free again. Everything
 * allocated from a before is gone. */
void arena_reset(arena *a);

#endif
