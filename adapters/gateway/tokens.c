/*
 * tokens.c - who may call the gateway: bearer tokens from a file.
 *
 * The file holds one caller a line, "TOKEN CALLER OPS": the secret token,
 * the name the access log gives the caller, and the operations it may use
 * (publish, revoke, request, catalogue, metrics, notices: subscriptions
 * and the long poll; comma separated, or * for all). Tokens are secrets,
 * so the file must be a regular file, opened without following a link,
 * that neither group nor others can read; the gateway refuses to start
 * otherwise.
 *
 * Only SHA-256 hashes of the tokens stay in memory. A presented token is
 * hashed and compared with every entry with sodium_memcmp, all entries
 * every time, so neither the position of a match nor the length of a
 * common prefix shows in the time an answer takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "gateway.h"

#define TOKENS_MAX_LINE 1024
#define TOKENS_MAX 4096
#define TOKEN_MIN_CHARS 16

static int parse_ops(const char *text, unsigned *ops)
{
    char copy[256], *save = NULL, *word;

    if (strlen(text) >= sizeof(copy))
        return -1;
    snprintf(copy, sizeof(copy), "%s", text);
    *ops = 0;
    for (word = strtok_r(copy, ",", &save); word != NULL;
         word = strtok_r(NULL, ",", &save)) {
        if (strcmp(word, "*") == 0)
            *ops |= OP_PUBLISH | OP_REVOKE | OP_REQUEST | OP_CATALOGUE |
                    OP_METRICS | OP_NOTICES;
        else if (strcmp(word, "publish") == 0)
            *ops |= OP_PUBLISH;
        else if (strcmp(word, "revoke") == 0)
            *ops |= OP_REVOKE;
        else if (strcmp(word, "request") == 0)
            *ops |= OP_REQUEST;
        else if (strcmp(word, "catalogue") == 0)
            *ops |= OP_CATALOGUE;
        else if (strcmp(word, "metrics") == 0)
            *ops |= OP_METRICS;
        else if (strcmp(word, "notices") == 0)
            *ops |= OP_NOTICES;
        else
            return -1;
    }
    return *ops != 0 ? 0 : -1;
}

static int parse_line(token_table *t, char *line, unsigned lineno,
                      const char *path, once_error *err)
{
    char *save = NULL, *token, *caller, *ops, *extra;
    token_entry *e;

    token = strtok_r(line, " \t\r\n", &save);
    if (token == NULL || token[0] == '#')
        return 0;
    caller = strtok_r(NULL, " \t\r\n", &save);
    ops = strtok_r(NULL, " \t\r\n", &save);
    extra = strtok_r(NULL, " \t\r\n", &save);
    if (caller == NULL || ops == NULL || extra != NULL)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s line %u: "
                              "want TOKEN CALLER OPS", path, lineno);
    if (strlen(token) < TOKEN_MIN_CHARS)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s line %u: "
                              "a token needs at least %d characters", path,
                              lineno, TOKEN_MIN_CHARS);
    if (strlen(caller) > ONCE_MAX_NAME)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s line %u: "
                              "the caller name is over %d characters", path,
                              lineno, ONCE_MAX_NAME);
    if (t->count == TOKENS_MAX)
        return once_error_set(err, ONCE_ERR_TOO_LARGE, "%s: more than %d "
                              "tokens", path, TOKENS_MAX);
    e = &t->entries[t->count];
    if (parse_ops(ops, &e->ops) < 0)
        return once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "%s line %u: "
                              "operations are publish, revoke, request, "
                              "catalogue, metrics, notices or *", path,
                              lineno);
    crypto_hash_sha256(e->hash, (const uint8_t *)token, strlen(token));
    sodium_memzero(token, strlen(token));
    snprintf(e->caller, sizeof(e->caller), "%s", caller);
    t->count++;
    return 0;
}

int tokens_load(token_table *t, const char *path, once_error *err)
{
    char line[TOKENS_MAX_LINE];
    unsigned lineno = 0;
    struct stat sb;
    FILE *f;
    int fd, rc = 0;

    memset(t, 0, sizeof(*t));
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return once_error_set(err, ONCE_ERR_IO, "cannot open the tokens "
                              "file %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
        (sb.st_mode & 077) != 0) {
        close(fd);
        return once_error_set(err, ONCE_ERR_BAD_KEY_FILE, "the tokens file "
                              "%s must be a regular file that group and "
                              "others cannot read (chmod 600)", path);
    }
    f = fdopen(fd, "r");
    t->entries = calloc(TOKENS_MAX, sizeof(*t->entries));
    if (f == NULL || t->entries == NULL) {
        if (f != NULL)
            fclose(f);
        else
            close(fd);
        free(t->entries);
        t->entries = NULL;
        return once_error_set(err, ONCE_ERR_NO_MEMORY, "out of memory");
    }
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f))
            rc = once_error_set(err, ONCE_ERR_TOO_LARGE, "%s line %u is too "
                                "long", path, lineno);
        else
            rc = parse_line(t, line, lineno, path, err);
        sodium_memzero(line, sizeof(line));
    }
    fclose(f);
    if (rc == 0 && t->count == 0)
        rc = once_error_set(err, ONCE_ERR_INVALID_ARGUMENT, "the tokens "
                            "file %s holds no token", path);
    if (rc < 0)
        tokens_free(t);
    return rc;
}

const token_entry *tokens_find(const token_table *t, const char *presented)
{
    uint8_t hash[32];
    const token_entry *found = NULL;
    size_t i;

    if (presented == NULL)
        return NULL;
    crypto_hash_sha256(hash, (const uint8_t *)presented, strlen(presented));
    for (i = 0; i < t->count; i++) {
        int same = sodium_memcmp(hash, t->entries[i].hash, 32) == 0;

        if (same && found == NULL)
            found = &t->entries[i];
    }
    return found;
}

void tokens_free(token_table *t)
{
    if (t->entries != NULL)
        sodium_memzero(t->entries, TOKENS_MAX * sizeof(*t->entries));
    free(t->entries);
    memset(t, 0, sizeof(*t));
}
