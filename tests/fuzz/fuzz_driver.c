/*
 * fuzz_driver.c - runs a libFuzzer target without libFuzzer.
 *
 * libFuzzer needs clang; the project builds with any C11 compiler, and the
 * fuzz targets should still guard every build. So each target is also
 * linked with this driver and run as an ordinary test:
 *
 *     fuzz-<name> CORPUS_DIR [MUTATIONS_PER_SEED]
 *
 * It feeds the target every file of CORPUS_DIR, then, for each, a number
 * (default 2000) of mutations: bit flips, interesting bytes, deletions,
 * insertions, duplicated ranges, truncations, splices with another seed and
 * overlong varints. The mutations come from a fixed-seed xorshift
 * generator, so a failure reproduces exactly, and each input is copied into
 * a buffer of exactly its size, so AddressSanitizer sees a read one byte
 * past the end. Under the sanitizers a crash fails the test; the target
 * itself aborts when a property it checks does not hold.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEFAULT_MUTATIONS 2000
#define MAX_SEED_BYTES (1024 * 1024)

typedef struct seed {
    uint8_t *data;
    size_t len;
} seed;

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static size_t rng_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next() % n);
}

static int read_seed(const char *path, seed *s)
{
    FILE *f = fopen(path, "rb");
    long size;

    if (f == NULL)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        size > MAX_SEED_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    s->len = (size_t)size;
    s->data = malloc(s->len > 0 ? s->len : 1);
    if (s->data == NULL || fread(s->data, 1, s->len, f) != s->len) {
        free(s->data);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static int skip_dot_files(const struct dirent *de)
{
    return de->d_name[0] != '.';
}

/* Runs the target on an exact-size copy of data. */
static void run(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);

    if (copy == NULL) {
        perror("malloc");
        exit(2);
    }
    if (len > 0)
        memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

/* Applies one to four random edits to buf (len bytes, room for cap). */
static size_t mutate(uint8_t *buf, size_t len, size_t cap, const seed *seeds,
                     size_t n_seeds)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff,
                                          0x08, 0x0a, 0x12, 0x40};
    static const uint8_t long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x01};
    size_t edits = rng_below(4) == 0 ? 2 + rng_below(3) : 1, pos, n, i;

    /* Mostly one edit, and mostly one that keeps the framing, so that many
     * inputs still decode and reach the checks behind the decoder. */
    while (edits-- > 0) {
        switch (rng_below(12)) {
        case 0: /* flip a bit */
        case 8:
        case 9:
        case 10:
            if (len > 0) {
                pos = rng_below(len);
                buf[pos] ^= (uint8_t)(1u << rng_below(8));
            }
            break;
        case 1: /* an interesting byte */
        case 11:
            if (len > 0)
                buf[rng_below(len)] =
                    interesting[rng_below(sizeof(interesting))];
            break;
        case 2: /* delete a range */
            if (len > 0) {
                pos = rng_below(len);
                n = 1 + rng_below(len - pos < 16 ? len - pos : 16);
                memmove(buf + pos, buf + pos + n, len - pos - n);
                len -= n;
            }
            break;
        case 3: /* insert random bytes */
            n = 1 + rng_below(8);
            if (len + n <= cap) {
                pos = rng_below(len + 1);
                memmove(buf + pos + n, buf + pos, len - pos);
                for (i = 0; i < n; i++)
                    buf[pos + i] = (uint8_t)rng_next();
                len += n;
            }
            break;
        case 4: /* duplicate a range */
            if (len > 0) {
                pos = rng_below(len);
                n = 1 + rng_below(len - pos < 32 ? len - pos : 32);
                if (len + n <= cap) {
                    memmove(buf + pos + n, buf + pos, len - pos);
                    len += n;
                }
            }
            break;
        case 5: /* truncate */
            len = rng_below(len + 1);
            break;
        case 6: /* splice: keep a prefix, append another seed's suffix */
            if (n_seeds > 0) {
                const seed *other = &seeds[rng_below(n_seeds)];

                pos = rng_below(len + 1);
                i = rng_below(other->len + 1);
                n = other->len - i;
                if (pos + n > cap)
                    n = cap - pos;
                memcpy(buf + pos, other->data + i, n);
                len = pos + n;
            }
            break;
        default: /* an overlong varint, as a length or a tag */
            if (len + sizeof(long_varint) <= cap) {
                pos = rng_below(len + 1);
                memmove(buf + pos + sizeof(long_varint), buf + pos, len - pos);
                memcpy(buf + pos, long_varint, sizeof(long_varint));
                len += sizeof(long_varint);
            }
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    struct dirent **entries;
    seed *seeds;
    size_t n_seeds = 0, i, cap, len, max_len = 0;
    unsigned long mutations = DEFAULT_MUTATIONS, k, inputs = 0;
    char path[4096];
    uint8_t *buf;
    int n, j;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS_PER_SEED]\n",
                argv[0]);
        return 2;
    }
    if (argc == 3)
        mutations = strtoul(argv[2], NULL, 10);
    n = scandir(argv[1], &entries, skip_dot_files, alphasort);
    if (n <= 0) {
        fprintf(stderr, "%s: no seeds in %s\n", argv[0], argv[1]);
        return 2;
    }
    seeds = calloc((size_t)n, sizeof(*seeds));
    if (seeds == NULL)
        return 2;
    for (j = 0; j < n; j++) {
        snprintf(path, sizeof(path), "%s/%s", argv[1], entries[j]->d_name);
        if (read_seed(path, &seeds[n_seeds]) < 0) {
            fprintf(stderr, "%s: cannot read %s\n", argv[0], path);
            return 2;
        }
        if (seeds[n_seeds].len > max_len)
            max_len = seeds[n_seeds].len;
        n_seeds++;
        free(entries[j]);
    }
    free(entries);

    cap = 2 * max_len + 256;
    buf = malloc(cap);
    if (buf == NULL)
        return 2;
    for (i = 0; i < n_seeds; i++) {
        run(seeds[i].data, seeds[i].len);
        inputs++;
        rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)(i + 1);
        for (k = 0; k < mutations; k++) {
            memcpy(buf, seeds[i].data, seeds[i].len);
            len = mutate(buf, seeds[i].len, cap, seeds, n_seeds);
            run(buf, len);
            inputs++;
        }
    }
    printf("%lu inputs from %zu seeds in %s: no failure\n", inputs, n_seeds,
           argv[1]);
    for (i = 0; i < n_seeds; i++)
        free(seeds[i].data);
    free(seeds);
    free(buf);
    return 0;
}
