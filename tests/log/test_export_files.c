/*
 * test_export_files.c - a log export into a hostile directory, the modes
 * of what it writes, evidence sealed to an auditor, and the short read
 * transactions it reads the log in.
 *
 * Each test builds a small log (placeholder leaves, signed checkpoints)
 * in a real LMDB environment and exports it with export_log into a
 * directory prepared the way an attacker would: links planted for files
 * and for directories, a directory others may write, one owned by another
 * user (as root, which the tests run as; else that case is skipped). Each
 * must be refused with a message naming the cause, and nothing may be
 * written where the links point. Then: public parts 0644/0755 and the
 * plain evidence 0600/0700 whatever the umask, an old export's evidence
 * made private when extended, sealed evidence kept apart from plain and
 * sealed to one key only, and an export that holds no LMDB snapshot while
 * it writes, even as the log grows under it, yet ends at its checkpoint.
 * (once-audit opening sealed evidence is tests/log/make_test_log.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "auditlog.h"
#include "checkpoint.h"
#include "evidence_seal.h"
#include "export.h"
#include "store.h"
#include "temp_dir.h"

#define ORIGIN "once.test/export"
#define LEAVES 600
#define GROUP 100

typedef struct fixture {
    char root[512];  /* 0700 scratch directory */
    char dir[608];   /* the export */
    char out[600];   /* where planted links point */
    store s;
    auditlog log;
    once_keypair broker;
    uint64_t n;
} fixture;

static void append_group(fixture *f, uint64_t count)
{
    char leaf[64], evidence[64], note[CHECKPOINT_MAX_NOTE];
    uint64_t i, index;
    once_error err;
    MDB_txn *txn;

    assert_int_equal(store_begin(&f->s, 0, &txn, &err), 0);
    for (i = 0; i < count; i++, f->n++) {
        snprintf(leaf, sizeof(leaf), "leaf %llu", (unsigned long long)f->n);
        snprintf(evidence, sizeof(evidence), "evidence %llu",
                 (unsigned long long)f->n);
        assert_int_equal(auditlog_append(txn, &f->log, (uint8_t *)leaf,
                                         strlen(leaf), (uint8_t *)evidence,
                                         strlen(evidence), &index, &err),
                         0);
    }
    assert_true(auditlog_sign_checkpoint(txn, &f->log, ORIGIN, &f->broker,
                                         note, sizeof(note), &err) > 0);
    assert_int_equal(store_commit(txn, &err), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char db[600];
    uint8_t seed[32];
    once_error err;

    if (f == NULL || once_init() < 0 ||
        temp_dir_make(f->root, sizeof(f->root), "test-export-files") < 0)
        return -1;
    snprintf(db, sizeof(db), "%s/db", f->root);
    snprintf(f->dir, sizeof(f->dir), "%s/export", f->root);
    snprintf(f->out, sizeof(f->out), "%s/outside", f->root);
    if (mkdir(db, 0700) < 0 || mkdir(f->out, 0700) < 0 ||
        store_open(&f->s, db, 64u << 20, &err) < 0 ||
        auditlog_open(&f->log, &f->s, &err) < 0)
        return -1;
    memset(seed, 0xb0, sizeof(seed));
    once_keypair_from_seed(&f->broker, seed);
    while (f->n < LEAVES)
        append_group(f, GROUP);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[PATH_MAX + 32];

    store_close(&f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int export_dir(fixture *f, const uint8_t *seal_to, once_error *err)
{
    export_options opt;

    memset(&opt, 0, sizeof(opt));
    opt.seal_to = seal_to;
    return export_log(&f->s, &f->log, f->dir, &opt, err);
}

static void path_in(char *out, const char *dir, const char *rel)
{
    if (snprintf(out, PATH_MAX, "%s/%s", dir, rel) >= PATH_MAX)
        fail_msg("path too long");
}

static unsigned mode_of(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    struct stat st;

    path_in(path, dir, rel);
    assert_int_equal(lstat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

static int exists_in(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    struct stat st;

    path_in(path, dir, rel);
    return lstat(path, &st) == 0;
}

static void plant_link(fixture *f, const char *rel, const char *target)
{
    char path[PATH_MAX];

    path_in(path, f->dir, rel);
    assert_int_equal(symlink(target, path), 0);
}

static void remove_export(fixture *f)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void make_dir(fixture *f, const char *rel, mode_t mode)
{
    char path[PATH_MAX];

    path_in(path, f->dir, rel);
    assert_int_equal(mkdir(path, mode), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* The victim a planted file link points at: outside/victim. */
static void make_victim(fixture *f, char *victim)
{
    FILE *v;

    path_in(victim, f->out, "victim");
    v = fopen(victim, "w");
    assert_non_null(v);
    fputs("precious\n", v);
    assert_int_equal(fclose(v), 0);
}

static void assert_victim_intact(const char *victim)
{
    char text[32] = {0};
    FILE *v = fopen(victim, "r");

    assert_non_null(v);
    assert_non_null(fgets(text, sizeof(text), v));
    fclose(v);
    assert_string_equal(text, "precious\n");
}

/* outside/ holds nothing but what the test put there. */
static void assert_outside_has(fixture *f, int entries)
{
    char cmd[PATH_MAX + 64];
    FILE *p;
    int n = 0, c;

    snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1", f->out);
    p = popen(cmd, "r");
    assert_non_null(p);
    while ((c = fgetc(p)) != EOF)
        n += c == '\n';
    pclose(p);
    assert_int_equal(n, entries);
}

static void expect_refusal(fixture *f, int code, const char *words)
{
    once_error err;

    memset(&err, 0, sizeof(err));
    assert_int_equal(export_dir(f, NULL, &err), -code);
    if (strstr(err.message, words) == NULL)
        fail_msg("message lacks \"%s\": %s", words, err.message);
    /* Refused before the checkpoint: nothing names data it lacks. */
    assert_false(exists_in(f->dir, "checkpoint"));
}

/* ---- planted links ---- */

static void test_planted_file_links(void **state)
{
    static const char *const names[] = {"README.txt.tmp", "README.txt",
                                        "keys.txt", "checkpoint.tmp"};
    fixture *f = *state;
    char victim[PATH_MAX];
    size_t i;

    make_victim(f, victim);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        make_dir(f, "", 0755);
        plant_link(f, names[i], victim);
        expect_refusal(f, ONCE_ERR_EXISTS, "is a symbolic link");
        assert_victim_intact(victim);
        remove_export(f);
    }
    /* A dangling link must not create its target either. */
    make_dir(f, "", 0755);
    plant_link(f, "keys.txt.tmp", "../outside/created");
    expect_refusal(f, ONCE_ERR_EXISTS, "keys.txt.tmp is a symbolic link");
    assert_outside_has(f, 1);
}

static void test_planted_directory_links(void **state)
{
    static const char *const dirs[] = {"tile", "tile/0", "tile/entries",
                                       "evidence", "checkpoints"};
    fixture *f = *state;
    size_t i;

    for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        make_dir(f, "", 0755);
        if (strchr(dirs[i], '/') != NULL)
            make_dir(f, "tile", 0755);
        plant_link(f, dirs[i], f->out);
        expect_refusal(f, ONCE_ERR_EXISTS, "is a symbolic link");
        assert_outside_has(f, 0);
        remove_export(f);
    }
    /* DIR itself a link to somewhere else, also when named "DIR/". */
    assert_int_equal(symlink(f->out, f->dir), 0);
    expect_refusal(f, ONCE_ERR_EXISTS, "is a symbolic link");
    strcat(f->dir, "/");
    expect_refusal(f, ONCE_ERR_EXISTS, "is a symbolic link");
    assert_outside_has(f, 0);
}

/* ---- directories others control ---- */

static void test_writable_by_others(void **state)
{
    fixture *f = *state;

    make_dir(f, "", 0777);
    expect_refusal(f, ONCE_ERR_INVALID_ARGUMENT, "group or others may write");
    assert_int_equal(chmod(f->dir, 0775), 0);
    expect_refusal(f, ONCE_ERR_INVALID_ARGUMENT, "mode 0775");
    /* A subdirectory: DIR is fine, tile/ is not. */
    assert_int_equal(chmod(f->dir, 0755), 0);
    make_dir(f, "tile", 0757);
    expect_refusal(f, ONCE_ERR_INVALID_ARGUMENT, "tile has mode 0757");
    assert_false(exists_in(f->dir, "tile/0"));
}

static void test_owned_by_another_user(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX];

    if (geteuid() != 0)
        skip();
    make_dir(f, "", 0755);
    assert_int_equal(chown(f->dir, 65534, 65534), 0);
    expect_refusal(f, ONCE_ERR_INVALID_ARGUMENT, "belongs to uid 65534");
    assert_int_equal(chown(f->dir, 0, 0), 0);
    make_dir(f, "evidence", 0700);
    path_in(path, f->dir, "evidence");
    assert_int_equal(chown(path, 65534, 65534), 0);
    expect_refusal(f, ONCE_ERR_INVALID_ARGUMENT, "belongs to uid 65534");
    assert_false(exists_in(f->dir, "evidence/000"));
}

/* ---- modes ---- */

static void assert_modes(fixture *f)
{
    assert_int_equal(mode_of(f->dir, "tile"), 0755);
    assert_int_equal(mode_of(f->dir, "tile/0"), 0755);
    assert_int_equal(mode_of(f->dir, "tile/0/001"), 0644);
    assert_int_equal(mode_of(f->dir, "tile/0/002.p"), 0755);
    assert_int_equal(mode_of(f->dir, "tile/0/002.p/88"), 0644);
    assert_int_equal(mode_of(f->dir, "tile/entries/000"), 0644);
    assert_int_equal(mode_of(f->dir, "checkpoints/600"), 0644);
    assert_int_equal(mode_of(f->dir, "checkpoint"), 0644);
    assert_int_equal(mode_of(f->dir, "keys.txt"), 0644);
    assert_int_equal(mode_of(f->dir, "README.txt"), 0644);
    assert_int_equal(mode_of(f->dir, "evidence"), 0700);
    assert_int_equal(mode_of(f->dir, "evidence/000"), 0600);
    assert_int_equal(mode_of(f->dir, "evidence/002.p"), 0700);
    assert_int_equal(mode_of(f->dir, "evidence/002.p/88"), 0600);
}

static void test_modes_whatever_the_umask(void **state)
{
    fixture *f = *state;
    once_error err;
    mode_t old = umask(0);

    assert_int_equal(export_dir(f, NULL, &err), 0);
    assert_int_equal(mode_of(f->dir, ""), 0755);
    assert_modes(f);
    remove_export(f);
    umask(077);
    assert_int_equal(export_dir(f, NULL, &err), 0);
    umask(old);
    assert_modes(f);
}

/* An export made when the evidence was 0644 becomes private when it is
 * extended. */
static void test_old_evidence_made_private(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX], cmd[PATH_MAX + 32];
    once_error err;

    assert_int_equal(export_dir(f, NULL, &err), 0);
    snprintf(cmd, sizeof(cmd), "chmod -R go+rX,go-w '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    path_in(path, f->dir, "evidence/000");
    assert_int_equal(chmod(path, 0644), 0);
    append_group(f, 10);
    assert_int_equal(export_dir(f, NULL, &err), 0);
    assert_int_equal(mode_of(f->dir, "evidence"), 0700);
    assert_int_equal(mode_of(f->dir, "evidence/000"), 0600);
    assert_int_equal(mode_of(f->dir, "evidence/002.p/98"), 0600);
    assert_false(exists_in(f->dir, "evidence/002.p/88"));
}

/* ---- sealed evidence ---- */

static void test_sealed_evidence(void **state)
{
    fixture *f = *state;
    once_keypair auditor, other;
    uint8_t *sealed, *plain;
    char path[PATH_MAX];
    once_error err;
    struct stat st;
    FILE *in;

    once_keypair_generate(&auditor);
    once_keypair_generate(&other);
    assert_int_equal(export_dir(f, auditor.public_key, &err), 0);
    assert_false(exists_in(f->dir, "evidence"));
    assert_true(exists_in(f->dir, "evidence-sealed/auditor.pub"));
    /* The bundle opens with the auditor's key, and only with it. */
    path_in(path, f->dir, "evidence-sealed/000");
    assert_int_equal(stat(path, &st), 0);
    sealed = malloc((size_t)st.st_size);
    plain = malloc((size_t)st.st_size);
    in = fopen(path, "rb");
    assert_non_null(in);
    assert_int_equal(fread(sealed, 1, (size_t)st.st_size, in),
                     (size_t)st.st_size);
    fclose(in);
    assert_int_equal(evidence_open(&auditor, sealed, (size_t)st.st_size,
                                   plain, &err), 0);
    assert_memory_equal(plain, "\0\0\0\x0a" "evidence 0", 14);
    assert_int_equal(evidence_open(&other, sealed, (size_t)st.st_size, plain,
                                   &err), -ONCE_ERR_CRYPTO);
    free(sealed);
    free(plain);
    /* Extended with the same key; refused with another, or in plain. */
    append_group(f, 10);
    assert_int_equal(export_dir(f, auditor.public_key, &err), 0);
    assert_true(exists_in(f->dir, "evidence-sealed/002.p/98"));
    assert_false(exists_in(f->dir, "evidence-sealed/002.p/88"));
    append_group(f, 10);
    assert_int_equal(export_dir(f, other.public_key, &err),
                     -ONCE_ERR_EXISTS);
    assert_non_null(strstr(err.message, "another auditor's key"));
    assert_int_equal(export_dir(f, NULL, &err), -ONCE_ERR_EXISTS);
    assert_non_null(strstr(err.message, "sealed to an auditor's key"));
    assert_false(exists_in(f->dir, "evidence"));
    once_keypair_wipe(&auditor);
    once_keypair_wipe(&other);
}

static void test_plain_then_sealed_refused(void **state)
{
    fixture *f = *state;
    once_keypair auditor;
    once_error err;

    once_keypair_generate(&auditor);
    assert_int_equal(export_dir(f, NULL, &err), 0);
    assert_int_equal(export_dir(f, auditor.public_key, &err),
                     -ONCE_ERR_EXISTS);
    assert_non_null(strstr(err.message, "holds evidence in plain"));
    assert_false(exists_in(f->dir, "evidence-sealed"));
    once_keypair_wipe(&auditor);
}

/* ---- short read transactions ---- */

typedef struct watch {
    fixture *f;
    unsigned calls, snapshots_seen;
} watch;

static int count_snapshots(const char *line, void *arg)
{
    watch *w = arg;
    const char *last = strrchr(line, ' ');

    /* "pid thread txnid": a reader holding a snapshot shows its txnid, a
     * reset one "-"; the header line has "txnid". */
    if (last != NULL && last[1] >= '0' && last[1] <= '9')
        w->snapshots_seen++;
    return 0;
}

/* Between chunks the export holds no snapshot, so the writer may reuse
 * pages; the log grows meanwhile, as under a live broker. */
static void between_chunks(void *arg, const char *what, uint64_t done,
                           uint64_t total)
{
    watch *w = arg;

    (void)what;
    (void)done;
    (void)total;
    assert_int_equal(mdb_reader_list(w->f->s.env, count_snapshots, w), 0);
    if (w->calls++ % 4 == 0)
        append_group(w->f, 7);
}

static void test_short_read_transactions(void **state)
{
    fixture *f = *state;
    char again[PATH_MAX + 8], cmd[3 * PATH_MAX];
    export_options opt;
    once_error err;
    watch w = {f, 0, 0};

    memset(&opt, 0, sizeof(opt));
    opt.progress = between_chunks;
    opt.progress_arg = &w;
    assert_int_equal(export_log(&f->s, &f->log, f->dir, &opt, &err), 0);
    /* A call per tile, bundle, batch of checkpoints. */
    assert_true(w.calls > 10);
    assert_int_equal(w.snapshots_seen, 0);
    assert_true(f->n > LEAVES);
    /* It ends at the checkpoint it started from, and is the export of that
     * tree made with nothing growing. */
    memset(&opt, 0, sizeof(opt));
    opt.end = LEAVES;
    snprintf(again, sizeof(again), "%s-again", f->dir);
    assert_int_equal(export_log(&f->s, &f->log, again, &opt, &err), 0);
    snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s'", f->dir, again);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_planted_file_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_planted_directory_links, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writable_by_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_owned_by_another_user, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_modes_whatever_the_umask, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_old_evidence_made_private, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_evidence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plain_then_sealed_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_short_read_transactions, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
