/*
 * client_internal.h - what lib/directory.c needs of the client: a call
 * that expects another answer kind than KIND_RESPONSE, and the identity
 * the client was opened with. Internal to libonce. See client.c.
 */
#ifndef ONCE_CLIENT_INTERNAL_H
#define ONCE_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"

/* Signs an envelope of kind carrying body, sends it, waits for its answer
 * (re-sending the same bytes after each timeout) and returns the body of
 * an answer of answer_kind in *answer (malloc'd). An Error answer becomes
 * -code with the broker's message; receipt may be NULL. */
int client_call(once_client *c, int kind, const uint8_t *body,
                size_t body_len, int answer_kind, uint8_t **answer,
                size_t *answer_len, once_receipt *receipt, once_error *err);

/* The department id and the broker key c was opened with. */
const char *client_department(const once_client *c);
const uint8_t *client_broker_key(const once_client *c);

#endif
