/*
 * sub_path.c - the path of a subscription (notices.c's routes) to what it
 * names:
 *
 *   /v1/subscriptions/types/{type}
 *   /v1/subscriptions/subjects/{type}/{subject}
 *   /v1/subscriptions/held
 *   /v1/subscriptions/held/{type}
 *
 * The path comes from a caller (unescaped by libmicrohttpd, so it may hold
 * any byte but NUL): every segment is checked for its length against the
 * buffer it goes into, an empty segment or a trailing one is refused, and
 * the text itself is left to libonce and the broker (INVALID_TEXT, an
 * unknown type, an invalid subject). Its own file so that
 * tests/fuzz/fuzz_gateway_path.c can drive it alone.
 */
#include <string.h>

#include "gateway.h"

/* Copies the segment at *p (up to '/' or the end) into out: 0, or -1
 * when empty or longer than cap - 1. */
static int segment(const char **p, char *out, size_t cap)
{
    const char *end = strchr(*p, '/');
    size_t n = end != NULL ? (size_t)(end - *p) : strlen(*p);

    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return 0;
}

int sub_path_parse(const char *path, sub_path *out)
{
    static const char prefix[] = "/v1/subscriptions/";
    const char *p = path + strlen(prefix);

    memset(out, 0, sizeof(*out));
    if (strncmp(path, prefix, strlen(prefix)) != 0)
        return -1;
    if (strcmp(p, "held") == 0) {
        out->scope = ONCE_SCOPE_HELD;
        return 0;
    }
    if (strncmp(p, "held/", 5) == 0) {
        p += 5;
        out->scope = ONCE_SCOPE_HELD;
    } else if (strncmp(p, "types/", 6) == 0) {
        p += 6;
        out->scope = ONCE_SCOPE_TYPE;
    } else if (strncmp(p, "subjects/", 9) == 0) {
        p += 9;
        out->scope = ONCE_SCOPE_SUBJECT;
    } else {
        return -1;
    }
    if (segment(&p, out->type, sizeof(out->type)) < 0)
        return -1;
    if (out->scope != ONCE_SCOPE_SUBJECT)
        return *p == '\0' ? 0 : -1;
    if (*p++ != '/' || segment(&p, out->subject, sizeof(out->subject)) < 0)
        return -1;
    return *p == '\0' ? 0 : -1;
}
