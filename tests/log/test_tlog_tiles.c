/*
 * test_tlog_tiles.c - tile widths and paths against the examples of the
 * C2SP tlog-tiles specification, and the splitting of entry and evidence
 * bundles in both of their framings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tlog_tiles.h"

static void expect_path(const char *prefix, uint64_t index, unsigned width,
                        const char *expected)
{
    char path[TLOG_PATH_MAX];

    assert_int_equal(tlog_tile_path(path, sizeof(path), prefix, index,
                                    width),
                     0);
    assert_string_equal(path, expected);
}

static void test_paths(void **state)
{
    char path[TLOG_PATH_MAX];

    (void)state;
    expect_path("tile/0", 1234067, 256, "tile/0/x001/x234/067");
    expect_path("tile/entries", 1234067, 8, "tile/entries/x001/x234/067.p/8");
    expect_path("tile/3", 0, 1, "tile/3/000.p/1");
    expect_path("tile/1", 1000, 256, "tile/1/x001/000");
    expect_path("evidence", UINT64_MAX / 256, 255,
                "evidence/x072/x057/x594/x037/x927/935.p/255");
    assert_int_equal(tlog_tile_path(path, 12, "tile/0", 1234067, 256), -1);
    /* One group has no x; the groups below the top keep their zeros. */
    expect_path("tile/0", 999, 256, "tile/0/999");
    expect_path("tile/0", 1002003, 256, "tile/0/x001/x002/003");
    expect_path("tile/2", 1000000, 256, "tile/2/x001/x000/000");
    /* Only widths 1..255 name a partial tile. */
    expect_path("tile/entries", 5, 255, "tile/entries/005.p/255");
    expect_path("tile/entries", 5, 1, "tile/entries/005.p/1");
    /* The longest path fits TLOG_PATH_MAX. */
    expect_path("tile/entries", UINT64_MAX, 255,
                "tile/entries/x018/x446/x744/x073/x709/x551/615.p/255");
    /* Room for the path and its NUL exactly, then one byte less. */
    assert_int_equal(tlog_tile_path(path, sizeof("evidence/x001/000.p/7"),
                                    "evidence", 1000, 7),
                     0);
    assert_string_equal(path, "evidence/x001/000.p/7");
    assert_int_equal(tlog_tile_path(path, sizeof("evidence/x001/000.p/7") - 1,
                                    "evidence", 1000, 7),
                     -1);
    assert_int_equal(tlog_tile_path(path, sizeof("evidence/x001/") - 1,
                                    "evidence", 1000, 7),
                     -1);
    assert_int_equal(tlog_tile_path(path, sizeof("evidence/") - 1,
                                    "evidence", 1000, 7),
                     -1);
}

/* An entry bundle (u16 lengths) of "ab", an empty entry and "cde". */
static const uint8_t entries3[] = {0, 2, 'a', 'b', 0, 0, 0, 3, 'c', 'd', 'e'};
/* The same entries in an evidence bundle (u32 lengths). */
static const uint8_t evidence3[] = {0, 0, 0, 2, 'a', 'b', 0, 0, 0, 0,
                                    0, 0, 0, 3, 'c', 'd', 'e'};

static void expect_split(const uint8_t *data, size_t len, unsigned count,
                         unsigned length_bytes, int rc, const char *reason)
{
    size_t offsets[TLOG_TILE_WIDTH], lengths[TLOG_TILE_WIDTH];
    once_error err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(tlog_bundle_split(data, len, count, length_bytes,
                                       offsets, lengths, &err),
                     rc);
    if (rc < 0 && strstr(err.message, reason) == NULL)
        fail_msg("\"%s\" does not say \"%s\"", err.message, reason);
}

/* Splits a bundle of entries3's entries with lengths of length_bytes and
 * finds each where it is expected. */
static void expect_entries3(const uint8_t *bundle, size_t len,
                            unsigned length_bytes,
                            const size_t expected_offsets[3])
{
    static const char *const entries[3] = {"ab", "", "cde"};
    size_t offsets[TLOG_TILE_WIDTH], lengths[TLOG_TILE_WIDTH], i;

    assert_int_equal(tlog_bundle_split(bundle, len, 3, length_bytes, offsets,
                                       lengths, NULL),
                     0);
    for (i = 0; i < 3; i++) {
        assert_int_equal(offsets[i], expected_offsets[i]);
        assert_int_equal(lengths[i], strlen(entries[i]));
        assert_memory_equal(bundle + offsets[i], entries[i], lengths[i]);
    }
}

static void test_bundle_split_both_framings(void **state)
{
    static const size_t entry_offsets[3] = {2, 6, 8};
    static const size_t evidence_offsets[3] = {4, 10, 14};

    (void)state;
    /* An empty entry is framing like any other: the split accounts for
     * bytes, and what an entry must hold is for the leaf's parser (an
     * empty LogLeaf or envelope does not parse). */
    expect_entries3(entries3, sizeof(entries3), TLOG_ENTRY_LENGTH_BYTES,
                    entry_offsets);
    expect_entries3(evidence3, sizeof(evidence3), TLOG_EVIDENCE_LENGTH_BYTES,
                    evidence_offsets);
    /* The other framing reads the same bytes as other lengths. */
    expect_split(evidence3, sizeof(evidence3), 3, TLOG_ENTRY_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "");
    expect_split(entries3, sizeof(entries3), 3, TLOG_EVIDENCE_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "");
    /* An empty bundle holds no entries. */
    expect_split(entries3, 0, 0, TLOG_ENTRY_LENGTH_BYTES, 0, "");
}

static void test_bundle_split_exact_count(void **state)
{
    uint8_t longer[sizeof(evidence3) + 1];

    (void)state;
    /* One entry fewer than the name promises leaves bytes over; one more
     * runs out. */
    expect_split(entries3, sizeof(entries3), 2, TLOG_ENTRY_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "5 bytes follow the last of 2 entries");
    expect_split(entries3, sizeof(entries3), 4, TLOG_ENTRY_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "ends after 3 of 4 entries");
    expect_split(entries3, 1, 0, TLOG_ENTRY_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "1 bytes follow");
    /* A length prefix cut short, in either framing. */
    expect_split(entries3, 7, 3, TLOG_ENTRY_LENGTH_BYTES, -ONCE_ERR_MALFORMED,
                 "ends after 2 of 3 entries");
    expect_split(evidence3, 12, 3, TLOG_EVIDENCE_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "ends after 2 of 3 entries");
    /* An entry cut short. */
    expect_split(entries3, sizeof(entries3) - 1, 3, TLOG_ENTRY_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "entry 2 runs past the end");
    expect_split(evidence3, sizeof(evidence3) - 1, 3,
                 TLOG_EVIDENCE_LENGTH_BYTES, -ONCE_ERR_MALFORMED,
                 "entry 2 runs past the end");
    /* One trailing byte. */
    memcpy(longer, evidence3, sizeof(evidence3));
    longer[sizeof(evidence3)] = 0;
    expect_split(longer, sizeof(longer), 3, TLOG_EVIDENCE_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "1 bytes follow the last of 3");
}

static void test_bundle_split_large_lengths(void **state)
{
    /* The largest u32 length: no wrap-around when it is added up. */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 'x'};
    size_t offsets[1], lengths[1], len = 4 + 70000;
    uint8_t *big = calloc(1, len);

    (void)state;
    assert_non_null(big);
    expect_split(huge, sizeof(huge), 1, TLOG_EVIDENCE_LENGTH_BYTES,
                 -ONCE_ERR_MALFORMED, "entry 0 runs past the end");
    /* An envelope over 64 KiB in an evidence bundle. */
    big[1] = 0x01;
    big[2] = 0x11;
    big[3] = 0x70;
    assert_int_equal(tlog_bundle_split(big, len, 1,
                                       TLOG_EVIDENCE_LENGTH_BYTES, offsets,
                                       lengths, NULL),
                     0);
    assert_int_equal(offsets[0], 4);
    assert_int_equal(lengths[0], 70000);
    /* The largest leaf an entry bundle frames. */
    big[0] = 0xff;
    big[1] = 0xff;
    assert_int_equal(tlog_bundle_split(big, 2 + 65535, 1,
                                       TLOG_ENTRY_LENGTH_BYTES, offsets,
                                       lengths, NULL),
                     0);
    assert_int_equal(lengths[0], 65535);
    free(big);
}

static void test_bundle_split_arguments(void **state)
{
    static uint8_t zeros[2 * (TLOG_TILE_WIDTH + 1)];

    (void)state;
    /* A full bundle of empty entries, then one more than a bundle holds. */
    expect_split(zeros, 2 * TLOG_TILE_WIDTH, TLOG_TILE_WIDTH,
                 TLOG_ENTRY_LENGTH_BYTES, 0, "");
    expect_split(zeros, sizeof(zeros), TLOG_TILE_WIDTH + 1,
                 TLOG_ENTRY_LENGTH_BYTES, -ONCE_ERR_INVALID_ARGUMENT,
                 "up to 256 entries");
    expect_split(zeros, 4, 1, 0, -ONCE_ERR_INVALID_ARGUMENT, "4-byte");
    expect_split(zeros, 5, 1, 5, -ONCE_ERR_INVALID_ARGUMENT, "4-byte");
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
        cmocka_unit_test(test_bundle_split_both_framings),
        cmocka_unit_test(test_bundle_split_exact_count),
        cmocka_unit_test(test_bundle_split_large_lengths),
        cmocka_unit_test(test_bundle_split_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
