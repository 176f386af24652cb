/*
 * zmq_handoff.c - tells ThreadSanitizer that a ZeroMQ message orders its
 * sender's work before its receiver's. Linked only into the
 * -Db_sanitize=thread build (tests/tsan/meson.build).
 *
 * onced's threads hand work to each other through inproc sockets: the I/O
 * thread passes envelopes to the workers, a worker passes a pointer to a
 * write job to the writer thread and waits for its signal back. That is
 * correct synchronisation, but it happens inside libzmq's lock-free pipes,
 * in a system library that is not instrumented, so ThreadSanitizer sees
 * none of it and reports every handed-over object as a data race.
 *
 * So the build's own programs get these four definitions, which interpose
 * libzmq's (an executable's symbols win over a shared library's): each
 * send first releases one synchronisation object, each successful receive
 * then acquires it, and both call the real function. One object for all
 * sockets over-approximates (a receive is ordered after every earlier
 * send, not only its own message's), which can hide a race between two
 * threads that only ever meet through unrelated messages; it never
 * invents one. The accesses libzmq itself makes (its I/O thread decoding
 * into its buffers) are covered by tsan.supp instead.
 */
#include <dlfcn.h>
#include <stddef.h>

#include <sanitizer/tsan_interface.h>
#include <zmq.h>

/* The address ThreadSanitizer uses as the one synchronisation object. */
static char handoff;

typedef int (*msg_fn)(zmq_msg_t *, void *, int);
typedef int (*send_fn)(void *, const void *, size_t, int);
typedef int (*recv_fn)(void *, void *, size_t, int);

static msg_fn real_msg_send, real_msg_recv;
static send_fn real_send;
static recv_fn real_recv;

/* The next definition of name after this one: libzmq's. Resolved once per
 * process, before main, so that no lazy lookup races. */
__attribute__((constructor)) static void find_real(void)
{
    real_msg_send = (msg_fn)dlsym(RTLD_NEXT, "zmq_msg_send");
    real_msg_recv = (msg_fn)dlsym(RTLD_NEXT, "zmq_msg_recv");
    real_send = (send_fn)dlsym(RTLD_NEXT, "zmq_send");
    real_recv = (recv_fn)dlsym(RTLD_NEXT, "zmq_recv");
}

int zmq_msg_send(zmq_msg_t *msg, void *s, int flags)
{
    __tsan_release(&handoff);
    return real_msg_send(msg, s, flags);
}

int zmq_msg_recv(zmq_msg_t *msg, void *s, int flags)
{
    int rc = real_msg_recv(msg, s, flags);

    if (rc >= 0)
        __tsan_acquire(&handoff);
    return rc;
}

int zmq_send(void *s, const void *buf, size_t len, int flags)
{
    __tsan_release(&handoff);
    return real_send(s, buf, len, flags);
}

int zmq_recv(void *s, void *buf, size_t len, int flags)
{
    int rc = real_recv(s, buf, len, flags);

    if (rc >= 0)
        __tsan_acquire(&handoff);
    return rc;
}
