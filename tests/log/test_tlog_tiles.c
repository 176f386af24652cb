/*
 * test_tlog_tiles.c - tile widths and paths against the examples of the
 * C2SP tlog-tiles specification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tlog_tiles.h"

static void test_paths(void **state)
{
    char path[TLOG_PATH_MAX];

    (void)state;
    assert_int_equal(tlog_tile_path(path, sizeof(path), "tile/0", 1234067,
                                    256),
                     0);
    assert_string_equal(path, "tile/0/x001/x234/067");
    assert_int_equal(tlog_tile_path(path, sizeof(path), "tile/entries",
                                    1234067, 8),
                     0);
    assert_string_equal(path, "tile/entries/x001/x234/067.p/8");
    assert_int_equal(tlog_tile_path(path, sizeof(path), "tile/3", 0, 1), 0);
    assert_string_equal(path, "tile/3/000.p/1");
    assert_int_equal(tlog_tile_path(path, sizeof(path), "tile/1", 1000, 256),
                     0);
    assert_string_equal(path, "tile/1/x001/000");
    assert_int_equal(tlog_tile_path(path, sizeof(path), "evidence",
                                    UINT64_MAX / 256, 255),
                     0);
    assert_string_equal(path, "evidence/x072/x057/x594/x037/x927/935.p/255");
    assert_int_equal(tlog_tile_path(path, 12, "tile/0", 1234067, 256), -1);
}

static void test_widths(void **state)
{
    (void)state;
    /* The specification's example: a tree of 70,000 leaves has 273 full
     * level-0 tiles and one of width 112, one full level-1 tile and one of
     * width 17, and one level-2 tile of width 1. */
    assert_int_equal(tlog_tile_count(70000, 0), 274);
    assert_int_equal(tlog_tile_width(70000, 0, 272), 256);
    assert_int_equal(tlog_tile_width(70000, 0, 273), 112);
    assert_int_equal(tlog_tile_width(70000, 0, 274), 0);
    assert_int_equal(tlog_tile_count(70000, 1), 2);
    assert_int_equal(tlog_tile_width(70000, 1, 0), 256);
    assert_int_equal(tlog_tile_width(70000, 1, 1), 17);
    assert_int_equal(tlog_tile_count(70000, 2), 1);
    assert_int_equal(tlog_tile_width(70000, 2, 0), 1);
    assert_int_equal(tlog_tile_count(70000, 3), 0);
    /* A tree of 256: one full level-0 tile and a level-1 tile of width 1. */
    assert_int_equal(tlog_tile_count(256, 0), 1);
    assert_int_equal(tlog_tile_width(256, 0, 0), 256);
    assert_int_equal(tlog_tile_width(256, 1, 0), 1);
    assert_int_equal(tlog_tile_count(0, 0), 0);
    assert_int_equal(tlog_level_hashes(UINT64_MAX, 7), 255);
    assert_int_equal(tlog_level_hashes(UINT64_MAX, 8), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_widths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
