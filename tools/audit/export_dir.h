/*
 * export_dir.h - reading an export directory (docs/AUDIT.md).
 *
 * See export_dir.c.
 */
#ifndef ONCE_TOOLS_AUDIT_EXPORT_DIR_H
#define ONCE_TOOLS_AUDIT_EXPORT_DIR_H

#include <stddef.h>
#include <stdint.h>

typedef struct export_dir {
    const char *path;
    int fd;
    uint8_t *note;   /* DIR/checkpoint, NUL-terminated */
    size_t note_len;
} export_dir;

/* Opens the export at path and reads its checkpoint file; -1 with a
 * message on stderr. */
int export_open(export_dir *x, const char *path);
void export_close(export_dir *x);

/* Reads a whole file, relative to dirfd, NUL-terminated for the callers
 * that print it. 0, or -errno (-ENOENT when it does not exist, -EFBIG when
 * it is larger than any file of an export can be, -EISDIR when it is not a
 * regular file). *data is malloc'd. */
int read_at(int dirfd, const char *path, uint8_t **data, size_t *len);

/* The path of tile or bundle `index` of `width` entries under prefix
 * ("tile/0", "tile/entries", ...), in out[TLOG_PATH_MAX]. */
void tile_path(char *out, const char *prefix, uint64_t index, unsigned width);

/* The prefix of the hash tiles of one level: "tile/<level>". */
void level_prefix(char *out, size_t cap, unsigned level);

/* Splits a bundle of count length-prefixed entries (tlog_bundle_split),
 * with the reason in why when it is malformed. 0, or -1. */
int split_bundle(const uint8_t *data, size_t len, unsigned count,
                 unsigned length_bytes, size_t *offs, size_t *lens,
                 char *why, size_t why_cap);

/* Reads leaf `index` from the entry bundles of an export of `size` leaves.
 * *leaf is malloc'd. 0, or -1 with the reason in why. */
int read_entry(int dirfd, uint64_t size, uint64_t index, uint8_t **leaf,
               size_t *leaf_len, char *why, size_t why_cap);

#endif
