/*
 * diag.c - onced's levelled diagnostics on stderr.
 *
 * Named diag, not log, because "the log" in once is the signed exchange
 * log (auditlog.c): these lines are for operators and never evidence.
 *
 * The broker runs under systemd or a terminal; both collect stderr, so the
 * log is plain lines there rather than a file this process would have to
 * rotate. Each line is
 *
 *     2024-05-01T08:30:12.345Z info server: listening on tcp://...
 *
 * (UTC, so lines from brokers in different zones sort together).
 *
 * Threads. The I/O thread, the workers, the writer and the ZAP handler all
 * log. A line is formatted completely into a buffer on the caller's stack
 * and handed to the kernel with one write(2), so lines from different
 * threads never interleave within a line and no lock is shared between
 * them. The level is an atomic read on every call, which is what makes a
 * disabled debug line cost almost nothing on the request path.
 *
 * What never reaches the log. Secrets are never passed here. Subjects
 * (credit codes, ID numbers) are personal data: callers log the keyed tag of
 * diag_subject_tag instead. Text that came off the wire (purposes, names in
 * refusals) could carry control characters meant to forge log lines, so
 * every byte below 0x20 and 0x7f is written as '?'.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "diag.h"

/* Longer lines are cut; no message the broker writes comes close. */
#define DIAG_LINE_MAX 2048

static _Atomic int current_level = DIAG_LEVEL_INFO;
static uint8_t subject_tag_key[crypto_generichash_KEYBYTES];

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void diag_init(diag_level level)
{
    randombytes_buf(subject_tag_key, sizeof(subject_tag_key));
    diag_set_level(level);
}

void diag_set_level(diag_level level)
{
    atomic_store(&current_level, (int)level);
}

bool diag_enabled(diag_level level)
{
    return (int)level <= atomic_load_explicit(&current_level,
                                              memory_order_relaxed);
}

int diag_level_parse(const char *name, diag_level *out)
{
    int i;

    for (i = 0; i <= DIAG_LEVEL_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (diag_level)i;
            return 0;
        }
    }
    return -1;
}

const char *diag_level_name(diag_level level)
{
    if ((int)level < 0 || level > DIAG_LEVEL_DEBUG)
        return "?";
    return level_names[level];
}

static void write_line(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, line, len);

        if (n <= 0)
            return; /* stderr is gone; there is nowhere left to say so */
        line += n;
        len -= (size_t)n;
    }
}

static void vlog(diag_level level, const char *module, const char *fmt,
                 va_list ap)
{
    char line[DIAG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t len, start, i;
    int n;

    if (!diag_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s %s: ",
                 ts.tv_nsec / 1000000L, level_names[level], module);
    if (n < 0)
        return;
    len += (size_t)n;
    if (len >= sizeof(line) - 1)
        len = sizeof(line) - 2;
    start = len;
    n = vsnprintf(line + len, sizeof(line) - 1 - len, fmt, ap);
    if (n < 0)
        return;
    len += (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    for (i = start; i < len; i++) {
        unsigned char c = (unsigned char)line[i];

        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    write_line(line, len);
}

#define DEFINE_LOG_FUNCTION(fn, level)                       \
    void fn(const char *module, const char *fmt, ...)        \
    {                                                        \
        va_list ap;                                          \
                                                             \
        va_start(ap, fmt);                                   \
        vlog(level, module, fmt, ap);                        \
        va_end(ap);                                          \
    }

DEFINE_LOG_FUNCTION(diag_error, DIAG_LEVEL_ERROR)
DEFINE_LOG_FUNCTION(diag_warn, DIAG_LEVEL_WARN)
DEFINE_LOG_FUNCTION(diag_info, DIAG_LEVEL_INFO)
DEFINE_LOG_FUNCTION(diag_debug, DIAG_LEVEL_DEBUG)

void diag_subject_tag(char out[DIAG_SUBJECT_TAG_CHARS], const char *type,
                     const char *subject)
{
    static const uint8_t separator = 0;
    static const char hex[] = "0123456789abcdef";
    crypto_generichash_state st;
    uint8_t hash[crypto_generichash_BYTES_MIN];
    size_t i;

    crypto_generichash_init(&st, subject_tag_key, sizeof(subject_tag_key),
                            sizeof(hash));
    crypto_generichash_update(&st, (const uint8_t *)type, strlen(type));
    crypto_generichash_update(&st, &separator, 1);
    crypto_generichash_update(&st, (const uint8_t *)subject, strlen(subject));
    crypto_generichash_final(&st, hash, sizeof(hash));
    for (i = 0; i < (DIAG_SUBJECT_TAG_CHARS - 1) / 2; i++) {
        out[2 * i] = hex[hash[i] >> 4];
        out[2 * i + 1] = hex[hash[i] & 15];
    }
    out[DIAG_SUBJECT_TAG_CHARS - 1] = '\0';
}
