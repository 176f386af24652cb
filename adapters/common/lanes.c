/*
 * lanes.c - the requests of many threads pipelined on a few broker
 * connections.
 *
 * Why. The gateway answers each HTTP request on a thread of its own
 * (libmicrohttpd), and a synchronous once_client carries one request at a
 * time: with the pool alone, requests in hand need as many connections
 * (CURVE handshakes, sessions in the broker's tables). A lane is one
 * connection that keeps up to ONCE_MAX_IN_FLIGHT requests in flight
 * (libonce's once_client_request_send and _receive) for any number of
 * threads.
 *
 * How. A once_client is used by one thread at a time, so each lane has a
 * thread of its own that alone sends and receives on its connection. A
 * caller puts its request (a job, on its own stack) on the lane's queue
 * and waits for it to be done. The lane's thread sends what is queued (up
 * to the limit in flight), then waits in once_client_request_receive for
 * the next answer, which it hands to the job of that ticket. A job queued
 * while the thread waits for answers wakes it (once_client_wake) so that
 * it is sent at once rather than after the next answer.
 *
 * Every job ends: each request in flight has its own timeout (the
 * adapter's timeout_ms, one attempt, as the pool's calls), and a failed
 * connection ends every request on it. The answer a job gets is what
 * once_client_request_ex or _as would have returned on a connection of
 * its own (the same checks, the same receipt); the caller verifies the
 * record with the directory's keys as before. At close the lanes finish
 * the jobs they hold, queued or in flight, before their threads end.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct lane_job {
    const char *user, *type, *subject, *purpose, *case_id;
    uint64_t version;
    int want_proof;
    /* The answer. */
    int rc;
    once_record *record;
    once_receipt *receipt;       /* may be NULL */
    once_error *err;             /* may be NULL */
    uint64_t ticket;
    bool done;
    pthread_cond_t done_cond;
    struct lane_job *next;
} lane_job;

typedef struct lane {
    pthread_mutex_t lock;
    pthread_cond_t work;         /* the thread waits for jobs */
    lane_job *queue, *queue_tail;    /* not sent yet */
    lane_job *sent[ONCE_MAX_IN_FLIGHT];
    size_t n_sent;
    bool receiving;              /* the thread waits in a receive */
    bool stopping;
    once_client *client;
    pthread_t thread;
    bool started;
} lane;

struct lanes {
    lane *lane;
    size_t n;
    _Atomic size_t next;         /* round robin */
};

/* Ends job with rc (under the lane's lock). */
static void job_end(lane_job *job, int rc, once_record *record,
                    once_receipt *receipt, const once_error *err)
{
    job->rc = rc;
    job->record = record;
    if (job->receipt != NULL) {
        once_receipt_clear(job->receipt);
        *job->receipt = *receipt;
    } else {
        once_receipt_clear(receipt);
    }
    if (job->err != NULL && rc < 0)
        *job->err = *err;
    job->done = true;
    pthread_cond_signal(&job->done_cond);
}

/* Sends the queued jobs while there is room in flight. Called and
 * returns with the lock held; sends without it. */
static void send_queued(lane *l)
{
    while (l->queue != NULL && l->n_sent < ONCE_MAX_IN_FLIGHT) {
        lane_job *job = l->queue;
        once_receipt none = { 0 };
        once_error err;
        int rc;

        l->queue = job->next;
        if (l->queue == NULL)
            l->queue_tail = NULL;
        pthread_mutex_unlock(&l->lock);
        rc = once_client_request_send(l->client, job->user, job->type,
                                      job->subject, job->purpose,
                                      job->case_id, job->version,
                                      job->want_proof, &job->ticket, &err);
        pthread_mutex_lock(&l->lock);
        if (rc < 0)
            job_end(job, rc, NULL, &none, &err);
        else
            l->sent[l->n_sent++] = job;
    }
}

/* Hands the answer to ticket to its job (under the lock). */
static void deliver(lane *l, uint64_t ticket, int rc, once_record *record,
                    once_receipt *receipt, const once_error *err)
{
    size_t i;

    for (i = 0; i < l->n_sent; i++) {
        if (l->sent[i]->ticket == ticket) {
            job_end(l->sent[i], rc, record, receipt, err);
            l->sent[i] = l->sent[--l->n_sent];
            return;
        }
    }
    /* Every ticket is one of ours: nothing else sends on this client. */
    once_record_free(record);
    once_receipt_clear(receipt);
}

static void *lane_run(void *arg)
{
    lane *l = arg;

    pthread_mutex_lock(&l->lock);
    for (;;) {
        once_receipt receipt = { 0 };
        once_record *record = NULL;
        uint64_t ticket = 0;
        once_error err;
        int rc;

        while (!l->stopping && l->queue == NULL && l->n_sent == 0)
            pthread_cond_wait(&l->work, &l->lock);
        send_queued(l);
        if (l->n_sent == 0) {
            if (l->stopping && l->queue == NULL)
                break;
            continue;
        }
        l->receiving = true;
        pthread_mutex_unlock(&l->lock);
        rc = once_client_request_receive(l->client, -1, &ticket, &record,
                                         &receipt, &err);
        pthread_mutex_lock(&l->lock);
        l->receiving = false;
        if (ticket != 0)
            deliver(l, ticket, rc, record, &receipt, &err);
        /* ticket 0: woken to send what was queued meanwhile. */
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int lanes_open(lanes **out, pool *p, unsigned n, once_error *err)
{
    lanes *ls = calloc(1, sizeof(*ls));
    size_t i;
    int rc = 0;

    *out = NULL;
    if (ls == NULL || (ls->lane = calloc(n, sizeof(*ls->lane))) == NULL) {
        free(ls);
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    ls->n = n;
    for (i = 0; i < n && rc == 0; i++) {
        lane *l = &ls->lane[i];

        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->work, NULL);
        if ((rc = pool_open_extra(p, &l->client, err)) < 0)
            break;
        if (pthread_create(&l->thread, NULL, lane_run, l) != 0) {
            rc = once_error_set(err, ONCE_ERR_NO_MEMORY,
                                "cannot start a lane's thread");
            break;
        }
        l->started = true;
    }
    if (rc < 0) {
        ls->n = i + 1; /* the lanes begun, the failed one included */
        lanes_close(ls);
        return rc;
    }
    *out = ls;
    return 0;
}

int lanes_request(lanes *ls, const char *user, const char *type,
                  const char *subject, const char *purpose,
                  const char *case_id, uint64_t version, int want_proof,
                  once_record **out, once_receipt *receipt, once_error *err)
{
    lane *l = &ls->lane[ls->next++ % ls->n];
    lane_job job = {
        .user = user, .type = type, .subject = subject, .purpose = purpose,
        .case_id = case_id, .version = version, .want_proof = want_proof,
        .receipt = receipt, .err = err,
    };

    *out = NULL;
    pthread_cond_init(&job.done_cond, NULL);
    pthread_mutex_lock(&l->lock);
    if (l->queue_tail != NULL)
        l->queue_tail->next = &job;
    else
        l->queue = &job;
    l->queue_tail = &job;
    if (l->receiving)
        once_client_wake(l->client);
    else
        pthread_cond_signal(&l->work);
    while (!job.done)
        pthread_cond_wait(&job.done_cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
    pthread_cond_destroy(&job.done_cond);
    *out = job.record;
    return job.rc;
}

void lanes_close(lanes *ls)
{
    size_t i;

    if (ls == NULL)
        return;
    for (i = 0; i < ls->n; i++) {
        lane *l = &ls->lane[i];

        if (l->started) {
            pthread_mutex_lock(&l->lock);
            l->stopping = true;
            pthread_cond_signal(&l->work);
            pthread_mutex_unlock(&l->lock);
            pthread_join(l->thread, NULL);
        }
        once_client_close(l->client);
        pthread_cond_destroy(&l->work);
        pthread_mutex_destroy(&l->lock);
    }
    free(ls->lane);
    free(ls);
}
