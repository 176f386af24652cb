/*
 * test_home.c - what onced does with its home before it serves anything.
 *
 *   - One broker per database: a second onced on a running broker's home,
 *     even on another endpoint, exits 2 without serving; two brokers would
 *     both execute every envelope. oncectl keeps writing the database
 *     beside the running broker, and the lock goes with the broker, so a
 *     restart after SIGTERM (or kill -9) is not blocked.
 *   - A home that does not exist is a configuration error: exit 2
 *     (docs/OPERATIONS.md), not 1.
 *   - Reader slots: the largest pool of workers still leaves room for
 *     others to read the database (store.c).
 *
 * Programs run to completion here are waited for without a time limit of
 * their own; a broker that does not exit fails the test by meson's
 * timeout rather than by a clock in the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "harness.h"
#include "store.h"

#define READERS 64

static e2e_broker broker;
static e2e_dept probe;

/* Runs onced with args (NULL-terminated), its output appended to log, and
 * returns its exit status (-1 when it died by a signal). */
static int run_onced(const char *log, ...)
{
    char *argv[16];
    va_list ap;
    int n = 0, status;
    pid_t pid;
    char *arg;

    argv[n++] = getenv("ONCED");
    va_start(ap, log);
    while ((arg = va_arg(ap, char *)) != NULL && n < 15)
        argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    assert_non_null(argv[0]);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state)
{
    (void)state;
    if (e2e_init(&broker) != 0 || e2e_dept_add(&broker, &probe, "probe") != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_cleanup(&broker);
    return 0;
}

static void test_second_broker_on_a_home_exits_2(void **state)
{
    char endpoint[PATH_MAX + 32], log[PATH_MAX + 32];
    once_client *c = NULL;
    e2e_dept other;
    once_error err;

    (void)state;
    assert_int_equal(e2e_start(&broker, &probe, NULL), 0);
    snprintf(endpoint, sizeof(endpoint), "ipc://%s/second.sock", broker.dir);
    snprintf(log, sizeof(log), "%s/second.log", broker.dir);
    assert_int_equal(run_onced(log, "--home", broker.home, "--listen",
                               endpoint, NULL), 2);
    assert_true(e2e_file_contains(log, "another onced"));
    assert_false(e2e_file_contains(log, "listening"));

    /* The first broker goes on, and oncectl still writes beside it. */
    assert_int_equal(e2e_dept_add(&broker, &other, "other"), 0);
    assert_int_equal(e2e_client(&broker, &other, &c, &err), 0);
    assert_int_equal(once_client_ping(c, &err), 0);
    once_client_close(c);

    /* The lock leaves with the broker, however it stops. */
    assert_int_equal(e2e_stop(&broker), 0);
    assert_int_equal(e2e_start(&broker, &probe, NULL), 0);
    e2e_kill(&broker);
    assert_int_equal(e2e_start(&broker, &probe, NULL), 0);
    assert_int_equal(e2e_stop(&broker), 0);
}

static void test_missing_home_exits_2(void **state)
{
    char home[PATH_MAX + 32], log[PATH_MAX + 32];

    (void)state;
    snprintf(home, sizeof(home), "%s/no-such-home", broker.dir);
    snprintf(log, sizeof(log), "%s/missing.log", broker.dir);
    assert_int_equal(run_onced(log, "--home", home, NULL), 2);
    assert_true(e2e_file_contains(log, "oncectl init"));
    /* Nothing was made in its place. */
    assert_int_equal(access(home, F_OK), -1);
}

/* With the most workers onced allows, READERS more read transactions
 * still find a reader slot. */
static void test_readers_beside_the_most_workers(void **state)
{
    char db_path[PATH_MAX + 8], workers[16];
    MDB_txn *txns[READERS];
    once_error err;
    store s;
    int i;

    (void)state;
    snprintf(workers, sizeof(workers), "%d", CONFIG_MAX_WORKERS);
    assert_int_equal(e2e_start(&broker, &probe, "--workers", workers, NULL),
                     0);
    snprintf(db_path, sizeof(db_path), "%s/db", broker.home);
    assert_int_equal(store_open(&s, db_path, 0, &err), 0);
    for (i = 0; i < READERS; i++)
        if (store_begin(&s, 1, &txns[i], &err) < 0)
            fail_msg("read transaction %d of %d: %s", i + 1, READERS,
                     err.message);
    for (i = 0; i < READERS; i++)
        mdb_txn_abort(txns[i]);
    store_close(&s);
    assert_int_equal(e2e_stop(&broker), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_broker_on_a_home_exits_2,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_home_exits_2, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readers_beside_the_most_workers,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
