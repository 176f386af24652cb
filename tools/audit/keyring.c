/*
 * keyring.c - the department keys of an export (keys.txt) and when each
 * was valid.
 *
 * A department may have had several keys over the life of a log (a key
 * replaced after a leak): keys.txt lists each with the time it was valid
 * from and until, and an envelope is checked with the key valid at its
 * leaf's time. The lines are parsed by lib/export_keys.c, which the fuzz
 * target fuzz_keys_line exercises; a line that does not parse is reported
 * and skipped, so one bad line does not hide the others' checks. The keys
 * are kept sorted by department, so that each of millions of leaves finds
 * its department's keys by binary search.
 */
#include "keyring.h"

#include <stdlib.h>
#include <string.h>

#include "export_dir.h"
#include "export_keys.h"
#include "util.h"

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const dept_key *)a)->id, ((const dept_key *)b)->id);
}

typedef struct keys_loading {
    keyring *keys;
    size_t cap;
    report *problems;
} keys_loading;

static int keys_add(void *arg, size_t line_number, const export_key *key,
                    const once_error *problem)
{
    keys_loading *l = arg;
    dept_key *dk;

    if (problem != NULL) {
        report_add(l->problems, "keys.txt line %zu: %s", line_number,
                   problem->message);
        return 0;
    }
    if (l->keys->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->keys->keys = xrealloc(l->keys->keys,
                                 l->cap * sizeof(*l->keys->keys));
    }
    dk = &l->keys->keys[l->keys->n++];
    memcpy(dk->id, key->id, sizeof(dk->id));
    memcpy(dk->pk, key->public_key, sizeof(dk->pk));
    dk->from = key->valid_from;
    dk->until = key->valid_until;
    return 0;
}

/* Loads DIR/keys.txt; malformed lines are problems. */
void keys_load(int dirfd, keyring *k, report *problems)
{
    keys_loading loading = {k, 0, problems};
    uint8_t *data;
    size_t len;
    int rc = read_at(dirfd, "keys.txt", &data, &len);

    memset(k, 0, sizeof(*k));
    if (rc < 0) {
        report_add(problems, "keys.txt: cannot read: %s", strerror(-rc));
        return;
    }
    export_keys_parse((const char *)data, len, keys_add, &loading);
    free(data);
    if (k->n > 0)
        qsort(k->keys, k->n, sizeof(*k->keys), key_cmp);
}

/* The keys of department id: [*first, *first + *count). */
void keys_of(const keyring *k, const char *id, size_t *first,
             size_t *count)
{
    size_t lo = 0, hi = k->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(k->keys[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    for (hi = lo; hi < k->n && strcmp(k->keys[hi].id, id) == 0; hi++)
        ;
    *count = hi - lo;
}

/* Whether keyring k holds this very key for department id. */
bool keys_hold(const keyring *k, const char *id,
               const uint8_t pk[ONCE_PUBLIC_KEY_BYTES])
{
    size_t first, count, i;

    keys_of(k, id, &first, &count);
    for (i = first; i < first + count; i++)
        if (memcmp(k->keys[i].pk, pk, ONCE_PUBLIC_KEY_BYTES) == 0)
            return true;
    return false;
}
