/*
 * fuzz_keys_line.c - keys.txt, line by line, on arbitrary bytes.
 *
 * once-audit takes the department keys it checks evidence with from the
 * export's keys.txt, which nobody signs. The input is a whole file, walked
 * with export_keys_parse, so the walk itself is fuzzed too (a NUL byte once
 * made the old loop spin forever). Beyond not crashing or hanging:
 *
 *   - every line that is neither empty nor a comment reaches the callback
 *     once, in order, as a key or as a problem with a reason: none is
 *     skipped in silence;
 *   - a parsed key writes back as one line without control characters that
 *     parses to the same key;
 *   - a line without the slack hand-written files may take (a tab, a
 *     "\r", more than one space, upper-case hex) is exactly the line the
 *     writer writes for what was parsed, possibly less the space in front
 *     of an empty name. So no byte of a field is dropped or reread: a NUL
 *     byte in the id, say, cannot shorten it to another department's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export_keys.h"
#include "once/once.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct walk {
    const char *text;
    size_t len;
    size_t last_line;
    size_t calls;
} walk;

static int same_key(const export_key *a, const export_key *b)
{
    return strcmp(a->id, b->id) == 0 &&
           memcmp(a->public_key, b->public_key, sizeof(a->public_key)) == 0 &&
           a->valid_from == b->valid_from &&
           a->valid_until == b->valid_until &&
           a->suspended == b->suspended && a->name_len == b->name_len &&
           memcmp(a->name, b->name, a->name_len) == 0;
}

static int has_slack(const char *line, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (line[i] == '\t' || line[i] == '\r' ||
            (line[i] >= 'A' && line[i] <= 'F') ||
            (line[i] == ' ' && (i == 0 || line[i - 1] == ' ')))
            return 1;
    return 0;
}

/* The line a key was parsed from: its name points into it and runs to
 * its end (before a "\r"). */
static void line_of(const walk *w, const export_key *key, const char **line,
                    size_t *len)
{
    const char *end = w->text + w->len, *start = key->name, *nl;

    if (key->name < w->text || key->name > end ||
        key->name_len > (size_t)(end - key->name))
        abort();
    while (start > w->text && start[-1] != '\n')
        start--;
    nl = memchr(key->name, '\n', (size_t)(end - key->name));
    *line = start;
    *len = (size_t)((nl != NULL ? nl : end) - start);
}

static void check_key(const walk *w, const export_key *key)
{
    const char *line;
    size_t line_len, cap, i;
    export_key again;
    char *out;
    int n;

    line_of(w, key, &line, &line_len);
    cap = line_len + 256;
    if ((out = malloc(cap)) == NULL)
        abort();
    n = export_keys_line_format(key, out, cap, NULL);
    if (n <= 0 || out[n - 1] != '\n')
        abort();
    for (i = 0; i < (size_t)n - 1; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            abort();
    if (export_keys_line_parse(out, (size_t)n - 1, &again, NULL) < 0 ||
        !same_key(key, &again))
        abort();
    if (!has_slack(line, line_len) &&
        !((size_t)n - 1 == line_len && memcmp(out, line, line_len) == 0) &&
        !((size_t)n - 1 == line_len + 1 && key->name_len == 0 &&
          memcmp(out, line, line_len) == 0))
        abort();
    free(out);
}

static int on_line(void *arg, size_t line_number, const export_key *key,
                   const once_error *problem)
{
    walk *w = arg;

    if (line_number <= w->last_line || (key == NULL) == (problem == NULL))
        abort();
    w->last_line = line_number;
    w->calls++;
    if (problem != NULL) {
        if (problem->code != ONCE_ERR_MALFORMED || problem->message[0] == '\0')
            abort();
        return 0;
    }
    check_key(w, key);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk w = {(const char *)data, size, 0, 0};
    size_t i, content_lines = 0;

    /* A line is content unless empty, a comment, or a lone CR (a blank
     * line with a CRLF ending, or a CR ending the file). */
    for (i = 0; i < size; i++)
        if ((i == 0 || data[i - 1] == '\n') && data[i] != '\n' &&
            data[i] != '#' &&
            !(data[i] == '\r' && (i + 1 == size || data[i + 1] == '\n')))
            content_lines++;
    if (export_keys_parse(w.text, size, on_line, &w) != 0 ||
        w.calls != content_lines)
        abort();
    return 0;
}
