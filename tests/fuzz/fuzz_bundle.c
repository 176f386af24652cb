/*
 * fuzz_bundle.c - tlog_bundle_split on arbitrary bytes, in both framings.
 *
 * once-audit splits every entry bundle (u16 lengths) and evidence bundle
 * (u32 lengths) of the export it is handed, and an export is outside
 * bytes. The first input byte is the number of entries the bundle's file
 * name promises, less one; the rest is the bundle, split with each
 * framing. Beyond not crashing and not reading past the end (the driver
 * hands over buffers of the exact size): a refusal fills the error, and an
 * accepted split accounts for every byte, each entry right after its own
 * big-endian length and the last one ending at the end, so the same bytes
 * can never also split into one entry more or one fewer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "once/once.h"
#include "tlog_tiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_split(const uint8_t *bundle, size_t len, unsigned count,
                        unsigned length_bytes)
{
    size_t offsets[TLOG_TILE_WIDTH], lengths[TLOG_TILE_WIDTH], pos = 0, n;
    once_error err = {0};
    unsigned i, j;

    if (tlog_bundle_split(bundle, len, count, length_bytes, offsets, lengths,
                          &err) < 0) {
        if (err.code != ONCE_ERR_MALFORMED || err.message[0] == '\0')
            abort();
        return;
    }
    for (i = 0; i < count; i++) {
        if (len - pos < length_bytes)
            abort();
        for (n = 0, j = 0; j < length_bytes; j++)
            n = (n << 8) | bundle[pos + j];
        if (offsets[i] != pos + length_bytes || lengths[i] != n ||
            len - offsets[i] < lengths[i])
            abort();
        pos = offsets[i] + lengths[i];
    }
    if (pos != len)
        abort();
    if (tlog_bundle_split(bundle, len, count - 1, length_bytes, offsets,
                          lengths, NULL) == 0)
        abort();
    if (count < TLOG_TILE_WIDTH &&
        tlog_bundle_split(bundle, len, count + 1, length_bytes, offsets,
                          lengths, NULL) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned count;

    if (size == 0)
        return 0;
    count = (unsigned)data[0] + 1;
    check_split(data + 1, size - 1, count, TLOG_ENTRY_LENGTH_BYTES);
    check_split(data + 1, size - 1, count, TLOG_EVIDENCE_LENGTH_BYTES);
    return 0;
}
