/*
 * onced_process.h - a real onced as a child process: start it, know when it
 * answers, stop it, read its log.
 *
 * Two programs run the broker binary as a child: once-bench (tools/bench/)
 * and the end-to-end test harness (tests/e2e/harness.c). Both need the same
 * few careful steps: fork and exec with the output in a log file, reap the
 * child when it ends early, treat "answers a signed ping" as ready (not "the
 * socket file exists": a ping proves the ZAP handler, the workers and the
 * database are up), stop it with SIGTERM and a bound on the wait. This is
 * that one copy. It is an internal static library of the build, not part of
 * libonce: nothing installed links it. See onced_process.c.
 */
#ifndef ONCE_TOOLS_BENCH_ONCED_PROCESS_H
#define ONCE_TOOLS_BENCH_ONCED_PROCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "once/once.h"

/* Runs argv (argv[0] is the program's path) with stdout and stderr
 * appended to log_path (made 0600 when new). Returns the child's pid, or
 * -1 when fork failed. A child that cannot exec writes why to the log and
 * exits 127. */
pid_t child_spawn(char *const argv[], const char *log_path);

/* Waits for pid to end: its exit status, or -1 when it died by a signal or
 * could not be waited for (pid -1 from a failed child_spawn included, so
 * that child_wait(child_spawn(...)) is safe). */
int child_wait(pid_t pid);

/* True while the child *pid runs. When it has ended, reaps it, stores its
 * wait status in *status (if not NULL), sets *pid to 0 and returns false. */
bool onced_running(pid_t *pid, int *status);

/* Pings the broker at endpoint as department dept (a registered one, with
 * key kp) every probe_timeout_ms until it answers, for up to wait_seconds.
 * Returns 0 once it answers; otherwise -1 with the reason in err: the child
 * ended (then *pid is 0), the broker refused the ping, or no answer in
 * time. */
int onced_wait_ready(pid_t *pid, const char *endpoint, const char *dept,
                     const once_keypair *kp,
                     const uint8_t broker_pk[ONCE_PUBLIC_KEY_BYTES],
                     int probe_timeout_ms, double wait_seconds,
                     once_error *err);

/* SIGTERM, then up to wait_seconds for the child to end; after that
 * SIGKILL. Sets *pid to 0. Returns the exit status (0..255); -1 when it
 * ended by a signal, was killed or was not running. A non-zero result comes
 * with the reason in err. */
int onced_stop(pid_t *pid, double wait_seconds, once_error *err);

/* SIGKILL and wait; sets *pid to 0. Nothing when *pid is 0. */
void onced_kill(pid_t *pid);

/* Copies the last max_bytes of the file at path (all of it when max_bytes
 * is 0) to stderr between marker lines naming what it is. */
void log_file_print(const char *path, const char *what, long max_bytes);

#endif
