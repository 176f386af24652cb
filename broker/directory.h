/*
 * directory.h - the broker's signed directory: departments, their keys and
 * status, the catalogue, and the asking department's grants, signed with
 * the broker key (docs/PROTOCOL.md 4.8). See directory.c.
 */
#ifndef ONCE_BROKER_DIRECTORY_H
#define ONCE_BROKER_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "once/once.h"
#include "store.h"

/* Answers a DirectoryRequest body from department with a serialized
 * SignedDirectory in *out (malloc'd, the caller frees it), read in txn.
 * 0, or -code with a message in err: MALFORMED (the body), TOO_LARGE (the
 * directory would not fit a message), INTERNAL. */
int directory_answer(MDB_txn *txn, const store *s, const once_keypair *key,
                     const char *department, const uint8_t *body,
                     size_t body_len, uint8_t **out, size_t *out_len,
                     once_error *err);

#endif
