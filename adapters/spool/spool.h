/*
 * spool.h - once-spool's modules and what they share.
 *
 * once-spool is for department systems that can only write and read
 * files. It holds the department's key like once-gateway and shares its
 * broker connections, idempotency state, JSON-to-record parser, directory
 * cache and answer documents (adapters/common/); what is its own:
 *
 *   main.c        start-up, the configuration file, signals, the loop
 *   dirs.c        the spool's directories: open and check, take a file,
 *                 finish it (every state change a rename), write answers
 *   spool_file.c  the files' JSON: an outbox record, a request (fuzzed)
 *   job.c         one taken file to its final answer, exactly once
 *   csv.c         rows of a CSV file (fuzzed)
 *   notices.c     notices as files in notices/, with a thread of its own
 *   import.c      `once-spool import`: a CSV file's rows published
 *
 * docs/ADAPTERS.md ("The file spool") is the guide for department
 * engineers; the layout and the rules are in dirs.c's top comment.
 */
#ifndef ONCE_SPOOL_H
#define ONCE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define SPOOL_DEFAULT_TIMEOUT_MS 5000
#define SPOOL_DEFAULT_MAX_FILE (1024 * 1024)
/* Longest name taken, so that NAME.problem.json and a NAME.<16 hex>
 * collision suffix stay under NAME_MAX. */
#define SPOOL_MAX_NAME 200

typedef struct spool_config {
    adapter_config base;          /* department, key, broker, state */
    char spool_dir[PATH_MAX];
    size_t max_file;
    bool notices;                 /* notices = ...: write notices/ */
    once_subscription_scope notice_scope;   /* 0: subscribe to nothing */
    char notice_type[ONCE_MAX_NAME + 1];    /* "" : every type (held) */
} spool_config;

/* ---- the directories (dirs.c) ------------------------------------------ */

enum spool_queue { QUEUE_OUTBOX = 0, QUEUE_REQUESTS = 1 };

typedef struct spool_dirs {
    int root;
    int in[2];        /* outbox/, requests/ */
    int work[2];      /* work/outbox/, work/requests/ */
    int sent, answers, failed;
    int notices;      /* notices/, -1 unless notices are on */
} spool_dirs;

/* Opens (creating 0700 what is missing) and checks every directory under
 * root: owned by this user, not writable by group or others, all on one
 * filesystem, and no other spool on them (a lock). 0 or -code. */
int dirs_open(spool_dirs *d, const char *root, once_error *err);
void dirs_close(spool_dirs *d);
/* Opens (creating 0700) notices/ under root, checked like the others. */
int dirs_open_notices(spool_dirs *d, const char *root, once_error *err);
/* Whether a directory entry is a file to take: not hidden, not .tmp, not
 * too long. */
bool dirs_takes_name(const char *name);
/* Moves queue's NAME into work/ (taken: the writer can no longer change
 * what the spool reads). 0, -ONCE_ERR_NOT_FOUND when it is gone, or
 * -code. */
int dirs_take(spool_dirs *d, enum spool_queue q, const char *name,
              once_error *err);
/* The names in a directory that dirs_takes_name accepts, sorted; *names
 * is one allocation (free it), *count its entries. */
int dirs_list(int dirfd, char ***names, size_t *count, once_error *err);
/* Reads work/NAME of queue, a regular file of at most max bytes:
 * *data (malloc'd, NUL-terminated), *len. -ONCE_ERR_TOO_LARGE, -EXISTS
 * (not a regular file), or -code. */
int dirs_read(spool_dirs *d, enum spool_queue q, const char *name,
              size_t max, char **data, size_t *len, once_error *err);
/* Finishes work/NAME of queue: writes doc (its JSON) as the answer file
 * beside it (answers/NAME for a request, sent/NAME.receipt.json for a
 * publish, failed/NAME.problem.json when failed), then renames the file
 * to sent/ or failed/. An existing file there of the same name is never
 * replaced: NAME.<suffix> is used. 0 or -code. */
int dirs_finish(spool_dirs *d, enum spool_queue q, const char *name,
                const char *suffix, bool failed, const char *answer,
                once_error *err);

/* ---- the files (spool_file.c) ------------------------------------------ */

typedef struct spool_request {
    char type[ONCE_MAX_NAME + 1];
    char subject[ONCE_MAX_SUBJECT + 1];
    char purpose[ONCE_MAX_PURPOSE + 1];
    char case_id[ONCE_MAX_CASE_ID + 1];
    char user[ONCE_MAX_USER + 1]; /* the acting official, "" for none */
    uint64_t version;             /* 0: the latest */
    int want_proof;
} spool_request;

/* An outbox file {"type", "subject", "fields", "version", "valid_from",
 * "valid_until"} into a new unsigned record issued by issuer. On a
 * refusal where names the member at fault. */
int spool_parse_record(const char *data, size_t len, const char *issuer,
                       uint64_t default_version, once_record **out,
                       char *where, size_t where_cap, once_error *err);
/* A requests/ file {"type", "subject", "purpose", "case_id", "user",
 * "version", "proof"}. */
int spool_parse_request(const char *data, size_t len, spool_request *out,
                        char *where, size_t where_cap, once_error *err);

/* ---- CSV rows (csv.c) -------------------------------------------------- */

/* The subject column and a record's fields. */
#define CSV_MAX_FIELDS (ONCE_MAX_FIELDS + 1)
#define CSV_MAX_ROW ONCE_MAX_MESSAGE

typedef struct csv_row {
    char *text;                           /* the fields, NUL-terminated */
    size_t cap;                           /* kept from row to row */
    size_t count;
    const char *field[CSV_MAX_FIELDS];
} csv_row;

/* Parses the row at buf[*pos] (buf holds len bytes): 1 with row filled
 * and *pos past the row's line break, 0 at the end, or -code for a
 * malformed row or one over the limits (*pos unchanged). */
int csv_next_row(const char *buf, size_t len, size_t *pos, csv_row *row,
                 once_error *err);
void csv_row_clear(csv_row *row);

/* ---- processing (job.c) ------------------------------------------------ */

typedef struct spool {
    spool_config cfg;
    adapter_core core;            /* key, broker key, state, pool, directory */
    spool_dirs dirs;
    uint64_t last_version;        /* default versions only grow */
} spool;

/* What became of a file. */
enum job_result {
    JOB_DONE = 0,    /* finished: in sent/ or failed/ */
    JOB_RETRY = 1,   /* left in work/: the broker is unreachable or busy */
    JOB_GONE = 2     /* no such file any more */
};

/* Processes work/NAME of queue to its end. -code only when the spool
 * itself cannot go on (its state or directories fail). */
int job_run(spool *s, enum spool_queue q, const char *name,
            enum job_result *result, once_error *err);

/* ---- notices (notices.c) ---------------------------------------------- */

/* The value of `notices` (off, on, held, held:TYPE, type:TYPE) into cfg:
 * 0, or -1 when it is none of them. */
int notices_config(spool_config *cfg, const char *value);
/* Starts the notices thread when cfg asks for it: 0 or -code. */
int notices_start(spool *s, once_error *err);
/* Stops it (the notice in hand is written and acknowledged first). */
void notices_stop(void);

/* ---- import (import.c) ------------------------------------------------- */

/* once-spool import FILE.csv --type T --subject-column C [--config F]
 * [--version N]: the exit status. */
int import_main(int argc, char **argv);
/* Reads the configuration at path (main.c): 0, or -1 after saying why. */
int spool_load_config(spool_config *cfg, const char *path);

#endif
