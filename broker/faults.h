/*
 * faults.h - failures onced can be made to have, for the tests of what it
 * does after one (tests/e2e/test_faults.c).
 *
 * What a broker does when its disk or one of its threads fails cannot be
 * tested by waiting for a disk to fail. So the build makes a second
 * broker, onced-faults, from the same sources with ONCED_FAULTS defined;
 * it is never installed, and only the tests run it. In onced itself every
 * fault_take() is the constant false and the compiler drops what it
 * guards: the installed broker has no hook and reads no variable.
 *
 * onced-faults reads the environment variable ONCED_FAULTS once, a
 * comma-separated list of NAME or NAME=COUNT (COUNT 1 when omitted):
 *
 *   commit=N     the writer's next N group commits fail as a failing disk
 *                would make them: nothing of the group is stored or
 *                logged, every job is answered INTERNAL;
 *   hand-off=N   the next N hand-offs of an exchange from a worker to the
 *                writer fail, as when the writer is gone;
 *   writer-dies  the writer thread dies on its next group without
 *                answering it, as after a failure of the thread itself;
 *   reply-interrupted=N
 *                the next N passes of an answer to the I/O thread are
 *                interrupted by a signal (EINTR), as when SIGHUP arrives
 *                while the I/O thread's queue is full;
 *   held-flush=N the writer's next N flushes of the records held in a
 *                transaction of their own (held_buffer.c) are skipped, as
 *                if the broker were killed before each: the copies stay
 *                in memory until a group with an event puts them.
 *
 * Each fault that fires says so in the log ("injected fault: ...").
 */
#ifndef ONCE_FAULTS_H
#define ONCE_FAULTS_H

#include <stdbool.h>

#define FAULT_COMMIT "commit"
#define FAULT_HAND_OFF "hand-off"
#define FAULT_WRITER_DIES "writer-dies"
#define FAULT_REPLY_INTERRUPTED "reply-interrupted"
#define FAULT_HELD_FLUSH "held-flush"

#ifdef ONCED_FAULTS
/* True, once per COUNT, when the fault `name` is to happen now; sets errno
 * to ECANCELED for the caller's message. Thread-safe. */
bool fault_take(const char *name);
#else
#define fault_take(name) ((void)(name), false)
#endif

#endif
