/*
 * fuzz_gateway_path.c - the path of a gateway subscription
 * (adapters/gateway/sub_path.c), on arbitrary bytes.
 *
 * The bytes up to the first NUL are the path (libmicrohttpd hands the
 * routes an unescaped, NUL-terminated path, so a NUL never reaches the
 * parser). No input may crash it or read past the string (the path is
 * copied to an exact-size allocation). Beyond that: an accepted path
 * names a scope, its type and subject fit their buffers and hold no '/',
 * a subject only with the subject scope, and writing them back out as a
 * path gives the input again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = strnlen((const char *)data, size);
    char *path = malloc(n + 1), back[512];
    sub_path sp;

    if (path == NULL)
        return 0;
    memcpy(path, data, n);
    path[n] = '\0';
    if (sub_path_parse(path, &sp) == 0) {
        if (strchr(sp.type, '/') != NULL || strchr(sp.subject, '/') != NULL ||
            strlen(sp.type) > ONCE_MAX_NAME ||
            strlen(sp.subject) > ONCE_MAX_SUBJECT)
            abort();
        if ((sp.scope == ONCE_SCOPE_SUBJECT) != (sp.subject[0] != '\0'))
            abort();
        if (sp.scope == ONCE_SCOPE_TYPE)
            snprintf(back, sizeof(back), "/v1/subscriptions/types/%s",
                     sp.type);
        else if (sp.scope == ONCE_SCOPE_SUBJECT)
            snprintf(back, sizeof(back), "/v1/subscriptions/subjects/%s/%s",
                     sp.type, sp.subject);
        else if (sp.scope == ONCE_SCOPE_HELD)
            snprintf(back, sizeof(back), "/v1/subscriptions/held%s%s",
                     sp.type[0] != '\0' ? "/" : "", sp.type);
        else
            abort();
        if (strcmp(back, path) != 0)
            abort();
    }
    free(path);
    return 0;
}
