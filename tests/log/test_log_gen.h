/*
 * test_log_gen.h - builds exchange logs with real signed envelopes, and
 * runs once-audit on their exports, for make_test_log.c.
 *
 * See test_log_gen.c.
 */
#ifndef ONCE_TEST_LOG_GEN_H
#define ONCE_TEST_LOG_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "audit_hash.h"
#include "auditlog.h"
#include "once.pb-c.h"
#include "store.h"

#define ORIGIN "once.test/exchange-log"
#define NSUBJECTS 8
#define LICENCE "business-licence"
#define TAX_REG "tax-registration"

enum { MARKET, TAX, POLICE, NDEPTS };

typedef struct dept {
    const char *id;
    const char *name;
    once_keypair kp;
    uint64_t session, seq;
} dept;

typedef struct subject_state {
    char code[19];
    uint64_t licence_version, tax_version;
    uint8_t licence_digest[32];
} subject_state;

typedef struct gen {
    char home[512];
    store s;
    auditlog log;
    once_keypair broker;
    uint8_t audit_key[AUDIT_KEY_BYTES];
    dept depts[NDEPTS];
    subject_state subj[NSUBJECTS];
    MDB_txn *txn;
    uint64_t n, in_txn, group;
    int bench;
    uint64_t *expect; /* leaves about (LICENCE, subject 0) */
    size_t nexpect, expect_cap;
} gen;
/* Checks that failed so far; CHECK counts one more and goes on. */
extern int failures;
/* once-audit ($ONCE_AUDIT), and the test's scratch directory. */
extern char *audit_path;
extern char tmp_root[256];

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "make_test_log:%s:%d: CHECK failed: %s: ",      \
                    __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            failures++;                                                     \
        }                                                                   \
    } while (0)

void die(const char *what, const once_error *err) __attribute__((noreturn));

/* ---- building a log, as the broker's writer does ---- */

/* A new log in dir (db/, broker.key and .pub, audit.key), with the three
 * departments registered and the empty tree's checkpoint signed. */
void open_log(gen *g, const char *dir, size_t map_size);
/* Grows the log to `to` leaves of the schedule, committing as it goes. */
void grow(gen *g, uint64_t to);
/* Signs the checkpoint and commits the open group. */
void commit(gen *g);
/* A signed envelope of d (*out malloc'd); bad_signature spoils it. */
void envelope(gen *g, dept *d, Once__Kind kind, const uint8_t *body,
              size_t body_len, int bad_signature, uint8_t **out,
              size_t *out_len);
/* Appends one leaf (its time and envelope digest are set here). */
void append(gen *g, Once__LogLeaf *leaf, const uint8_t *evidence,
            size_t evidence_len, const subject_state *about);
/* Appends a request of d about su, granted or refused with `refusal`. */
void request(gen *g, dept *d, subject_state *su, const char *purpose,
             const char *case_id, Once__ErrorCode refusal);

int export_with(gen *g, const char *dir, uint64_t start,
                const uint8_t *seal_to, once_error *err);
void export_to(gen *g, const char *dir, uint64_t start);

/* ---- running once-audit, and files ---- */

/* Runs once-audit with the NULL-terminated arguments; its stdout and
 * stderr land in *out (malloc'd). Returns the exit status. */
int run(char **out, ...);
/* Every FAIL line names `token`; at least one FAIL line exists. */
int fails_all_name(const char *out, const char *token);
/* Runs a shell command; exits on failure. */
void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int same_tree(const char *a, const char *b);
uint8_t *slurp(const char *path, size_t *len);
void spit(const char *path, const uint8_t *data, size_t len);
/* Flips a bit of leaf `index`'s entry in a bundle of an export of `size`
 * leaves (in its middle, or its last byte when at_end). */
void flip_in_bundle(const char *dir, const char *prefix, int len_bytes,
                    uint64_t size, uint64_t index, int at_end);

#endif
