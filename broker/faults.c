/*
 * faults.c - the failures onced-faults can be made to have (faults.h). Only
 * compiled into that test binary.
 *
 * ONCED_FAULTS is parsed once, on the first question, into a small table
 * of remaining counts; a fault fires by taking one off its count under a
 * mutex, so two threads never both take the last one. An unknown name or a
 * bad count stops the broker at the first question: a test that asked for
 * a fault that never fires would pass for the wrong reason.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"
#include "diag.h"

#define MAX_FAULTS 8

typedef struct fault {
    const char *name;
    unsigned long left;
} fault;

static fault faults[MAX_FAULTS] = {
    { FAULT_COMMIT, 0 },
    { FAULT_HAND_OFF, 0 },
    { FAULT_WRITER_DIES, 0 },
    { FAULT_REPLY_INTERRUPTED, 0 },
    { FAULT_HELD_FLUSH, 0 },
};
static pthread_once_t parsed = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static fault *find(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < MAX_FAULTS && faults[i].name != NULL; i++)
        if (strlen(faults[i].name) == len &&
            memcmp(faults[i].name, name, len) == 0)
            return &faults[i];
    return NULL;
}

static void parse(void)
{
    const char *p = getenv("ONCED_FAULTS");

    while (p != NULL && *p != '\0') {
        size_t len = strcspn(p, ",="), item = strcspn(p, ",");
        unsigned long count = 1;
        fault *f = find(p, len);
        char *end;

        if (p[len] == '=') {
            count = strtoul(p + len + 1, &end, 10);
            if (end != p + item || count == 0)
                f = NULL;
        }
        if (f == NULL) {
            diag_error("faults", "ONCED_FAULTS: cannot read '%.*s'",
                      (int)item, p);
            abort();
        }
        f->left = count;
        p += item;
        if (*p == ',')
            p++;
    }
}

bool fault_take(const char *name)
{
    fault *f;
    bool take = false;

    pthread_once(&parsed, parse);
    f = find(name, strlen(name));
    pthread_mutex_lock(&lock);
    if (f != NULL && f->left > 0) {
        f->left--;
        take = true;
    }
    pthread_mutex_unlock(&lock);
    if (take) {
        diag_warn("faults", "injected fault: %s", name);
        errno = ECANCELED;
    }
    return take;
}
