/*
 * onced_process.c - a real onced as a child process, for once-bench and
 * the end-to-end test harness.
 *
 * Both used to carry their own fork/exec, readiness probe and stop; they
 * had drifted (one re-opened its probe client after a failed handshake, the
 * other did not; one bounded the wait after SIGTERM, the other did not).
 * This is the one copy, with the more careful choice of each:
 *
 *   - the child's stdout and stderr are appended to a log file, so a
 *     restarted broker adds to the same log and a failing caller can show
 *     it; the file is made 0600 (it may name departments);
 *   - ready means "answers a signed ping", through libonce's client with
 *     no retries so that each probe is bounded by its own timeout; a probe
 *     client whose CurveZMQ handshake failed is closed and opened again
 *     (the broker may have been half up), and a refusal such as an unknown
 *     probe department ends the wait at once rather than at the deadline;
 *   - the child is reaped whenever it is looked at, so an early exit is
 *     noticed and reported with its status, never waited on for nothing;
 *   - stopping is SIGTERM and a bounded wait, then SIGKILL: a broker that
 *     does not drain never hangs the caller.
 *
 * Messages go to the caller through once_error; nothing here prints
 * except log_file_print.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onced_process.h"

#include "monotonic.h"

/* Between polls of a child that is stopping, and before a new probe client
 * after a failed handshake. */
#define STOP_POLL_US 20000
#define REOPEN_PAUSE_US 100000

static uint64_t deadline_after(double seconds)
{
    return monotonic_ns() + (uint64_t)(seconds * 1e9);
}

pid_t child_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                      0600);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

int child_wait(pid_t pid)
{
    int status;

    if (pid <= 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool onced_running(pid_t *pid, int *status)
{
    int st;

    if (*pid <= 0)
        return false;
    if (waitpid(*pid, &st, WNOHANG) == *pid) {
        *pid = 0;
        if (status != NULL)
            *status = st;
        return false;
    }
    return true;
}

/* "exit status 3" or "signal 9" for a wait status. */
static const char *how_ended(int status, int *number)
{
    *number = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
    return WIFEXITED(status) ? "exit status" : "signal";
}

int onced_wait_ready(pid_t *pid, const char *endpoint, const char *dept,
                     const once_keypair *kp,
                     const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                     int probe_timeout_ms, double wait_seconds,
                     once_error *err)
{
    once_client_options o = {.timeout_ms = probe_timeout_ms, .retries = 0};
    uint64_t deadline = deadline_after(wait_seconds);
    once_client *c = NULL;
    once_error e = {0};
    int status = 0, n;

    while (monotonic_ns() < deadline) {
        if (!onced_running(pid, &status)) {
            const char *how = how_ended(status, &n);

            once_client_close(c);
            once_error_set(err, ONCE_ERR_UNAVAILABLE,
                           "the broker ended during start-up (%s %d)", how,
                           n);
            return -1;
        }
        if (c == NULL && once_client_open(&c, endpoint, dept, kp, broker_pk,
                                          &o, &e) < 0) {
            once_error_set(err, e.code, "cannot open a client: %s",
                           e.message);
            return -1;
        }
        if (once_client_ping(c, &e) == 0) {
            once_client_close(c);
            return 0;
        }
        if (e.code != ONCE_ERR_TIMEOUT && e.code != ONCE_ERR_CONNECT) {
            once_client_close(c);
            once_error_set(err, e.code, "the broker refused a ping: %s",
                           e.message);
            return -1;
        }
        if (e.code == ONCE_ERR_CONNECT) {
            once_client_close(c);
            c = NULL;
            usleep(REOPEN_PAUSE_US);
        }
    }
    once_client_close(c);
    once_error_set(err, ONCE_ERR_TIMEOUT,
                   "the broker did not answer a ping within %g s",
                   wait_seconds);
    return -1;
}

int onced_stop(pid_t *pid, double wait_seconds, once_error *err)
{
    uint64_t deadline = deadline_after(wait_seconds);
    int status = 0, n;

    if (*pid <= 0) {
        once_error_set(err, ONCE_ERR_INVALID_ARGUMENT,
                       "the broker is not running");
        return -1;
    }
    kill(*pid, SIGTERM);
    while (monotonic_ns() < deadline) {
        if (!onced_running(pid, &status)) {
            const char *how = how_ended(status, &n);

            if (WIFEXITED(status) && n == 0)
                return 0;
            once_error_set(err, ONCE_ERR_UNAVAILABLE,
                           "the broker ended with %s %d after SIGTERM", how,
                           n);
            return WIFEXITED(status) ? n : -1;
        }
        usleep(STOP_POLL_US);
    }
    onced_kill(pid);
    once_error_set(err, ONCE_ERR_TIMEOUT,
                   "the broker did not exit within %g s of SIGTERM; killed "
                   "it", wait_seconds);
    return -1;
}

void onced_kill(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    child_wait(*pid);
    *pid = 0;
}

void log_file_print(const char *path, const char *what, long max_bytes)
{
    char buf[4096];
    size_t n;
    long size;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return;
    if (max_bytes > 0 && fseek(f, 0, SEEK_END) == 0 &&
        (size = ftell(f)) > max_bytes)
        fseek(f, size - max_bytes, SEEK_SET);
    else
        rewind(f);
    fprintf(stderr, "---- %s (%s) ----\n", what, path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of %s ----\n", what);
    fclose(f);
}
