/*
 * test_buffers.c - the broker's two small memory modules, shared by the
 * workers, policy.c, reply.c and export.c: the bump allocator for
 * protobuf-c (broker/arena.c) and the growable byte buffer
 * (broker/byte_buffer.c).
 *
 * The arena: allocations come from the block, aligned, until it is full;
 * what does not fit is malloc'd, never refused, and freed at reset (ASan
 * reports a leak otherwise); a real protobuf message decodes into it. The
 * buffer: appends keep what was there across growth, a size that would
 * wrap is refused with the buffer unchanged, and a buffer marked wipe
 * stays marked after it is freed (the export frees and reuses nothing, but
 * a wiped buffer must not silently become an unwiped one).
 */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "byte_buffer.h"
#include "once.pb-c.h"

#define BLOCK_BYTES 1024

static void test_arena_block_then_overflow(void **state)
{
    alignas(max_align_t) uint8_t block[BLOCK_BYTES];
    ProtobufCAllocator alloc;
    arena a;
    uint8_t *p, *q, *big;
    int i;

    (void)state;
    arena_init(&a, block, sizeof(block));
    alloc = arena_allocator(&a);
    p = alloc.alloc(alloc.allocator_data, 1);
    q = alloc.alloc(alloc.allocator_data, 3);
    assert_ptr_equal(p, block);
    assert_true(q > p && q < block + sizeof(block));
    assert_int_equal((uintptr_t)q % alignof(max_align_t), 0);
    /* Larger than the block: from the heap, and usable. */
    big = alloc.alloc(alloc.allocator_data, 4 * BLOCK_BYTES);
    assert_non_null(big);
    assert_true(big < block || big >= block + sizeof(block));
    memset(big, 0xab, 4 * BLOCK_BYTES);
    /* Fill the block; the rest goes to the heap too. */
    for (i = 0; i < 64; i++)
        assert_non_null(alloc.alloc(alloc.allocator_data, 64));
    assert_true(a.used <= a.size);
    assert_non_null(a.overflow);
    alloc.free(alloc.allocator_data, big); /* nothing until the reset */
    arena_reset(&a);
    assert_int_equal(a.used, 0);
    assert_null(a.overflow);
    /* Wrapping sizes are refused, not rounded down to a small block. */
    assert_null(alloc.alloc(alloc.allocator_data, SIZE_MAX));
    arena_reset(&a);
}

static void test_arena_decodes_a_message(void **state)
{
    alignas(max_align_t) uint8_t block[BLOCK_BYTES];
    Once__Grant g = ONCE__GRANT__INIT, *back;
    char *fields[] = {"name", "address", "status"};
    ProtobufCAllocator alloc;
    uint8_t packed[256];
    size_t len;
    arena a;

    (void)state;
    g.requester = "tax";
    g.type = "company";
    g.purpose = "audit";
    g.n_fields = 3;
    g.fields = fields;
    len = once__grant__pack(&g, packed);
    arena_init(&a, block, sizeof(block));
    alloc = arena_allocator(&a);
    back = once__grant__unpack(&alloc, len, packed);
    assert_non_null(back);
    assert_string_equal(back->requester, "tax");
    assert_int_equal(back->n_fields, 3);
    assert_string_equal(back->fields[2], "status");
    assert_true(a.used > 0);
    assert_null(a.overflow);
    arena_reset(&a);
}

static void test_buffer_appends_and_grows(void **state)
{
    byte_buffer b = {0};
    uint8_t chunk[1000];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)i;
    for (i = 0; i < 20; i++)
        assert_int_equal(byte_buffer_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 20 * sizeof(chunk));
    assert_true(b.cap >= b.len);
    for (i = 0; i < 20; i++)
        assert_memory_equal(b.data + i * sizeof(chunk), chunk, sizeof(chunk));
    /* reserve never shrinks, and keeps the bytes. */
    assert_int_equal(byte_buffer_reserve(&b, 10), 0);
    assert_memory_equal(b.data, chunk, sizeof(chunk));
    byte_buffer_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_buffer_refuses_wrapping_sizes(void **state)
{
    byte_buffer b = {0};
    uint8_t *data;
    size_t cap;

    (void)state;
    assert_int_equal(byte_buffer_append(&b, "abc", 3), 0);
    data = b.data;
    cap = b.cap;
    assert_int_equal(byte_buffer_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(byte_buffer_reserve(&b, SIZE_MAX / 2 + 1), -1);
    assert_int_equal(byte_buffer_append(&b, "x", SIZE_MAX - 1), -1);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 3);
    byte_buffer_free(&b);
}

static void test_wiped_buffer_keeps_bytes_and_mark(void **state)
{
    byte_buffer b = {.wipe = true};
    uint8_t chunk[3000];
    size_t i;

    (void)state;
    memset(chunk, 0x5a, sizeof(chunk));
    /* Grows past its first block twice: by copy, not realloc. */
    for (i = 0; i < 5; i++)
        assert_int_equal(byte_buffer_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 5 * sizeof(chunk));
    for (i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], 0x5a);
    byte_buffer_free(&b);
    assert_null(b.data);
    assert_true(b.wipe);
    byte_buffer_free(&b); /* a freed buffer frees again harmlessly */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_block_then_overflow),
        cmocka_unit_test(test_arena_decodes_a_message),
        cmocka_unit_test(test_buffer_appends_and_grows),
        cmocka_unit_test(test_buffer_refuses_wrapping_sizes),
        cmocka_unit_test(test_wiped_buffer_keeps_bytes_and_mark),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
