/*
 * error.c - error codes, their names and messages, and library start-up.
 *
 * Codes below 100 are the wire's ErrorCode values; the names returned here
 * are the stable strings the tools print and the docs list, so operators can
 * search logs for them.
 */
#include <stdarg.h>
#include <stdio.h>

#include <sodium.h>

#include "once/once.h"

const char *once_error_name(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case ONCE_OK: return "OK";
    case ONCE_ERR_MALFORMED: return "MALFORMED";
    case ONCE_ERR_BAD_SIGNATURE: return "BAD_SIGNATURE";
    case ONCE_ERR_UNKNOWN_SENDER: return "UNKNOWN_SENDER";
    case ONCE_ERR_SENDER_MISMATCH: return "SENDER_MISMATCH";
    case ONCE_ERR_REPLAY: return "REPLAY";
    case ONCE_ERR_CLOCK_SKEW: return "CLOCK_SKEW";
    case ONCE_ERR_NOT_ISSUER: return "NOT_ISSUER";
    case ONCE_ERR_NO_GRANT: return "NO_GRANT";
    case ONCE_ERR_MISSING_PURPOSE: return "MISSING_PURPOSE";
    case ONCE_ERR_INVALID_SUBJECT: return "INVALID_SUBJECT";
    case ONCE_ERR_UNKNOWN_TYPE: return "UNKNOWN_TYPE";
    case ONCE_ERR_TOO_LARGE: return "TOO_LARGE";
    case ONCE_ERR_SUSPENDED: return "SUSPENDED";
    case ONCE_ERR_NOT_FOUND: return "NOT_FOUND";
    case ONCE_ERR_INVALID_RECORD: return "INVALID_RECORD";
    case ONCE_ERR_STALE_VERSION: return "STALE_VERSION";
    case ONCE_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case ONCE_ERR_INTERNAL: return "INTERNAL";
    case ONCE_ERR_STORAGE_FULL: return "STORAGE_FULL";
    case ONCE_ERR_UNAVAILABLE: return "UNAVAILABLE";
    case ONCE_ERR_INVALID_TEXT: return "INVALID_TEXT";
    case ONCE_ERR_QUOTA_EXCEEDED: return "QUOTA_EXCEEDED";
    case ONCE_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case ONCE_ERR_NO_MEMORY: return "NO_MEMORY";
    case ONCE_ERR_IO: return "IO";
    case ONCE_ERR_TIMEOUT: return "TIMEOUT";
    case ONCE_ERR_CONNECT: return "CONNECT";
    case ONCE_ERR_CRYPTO: return "CRYPTO";
    case ONCE_ERR_BAD_KEY_FILE: return "BAD_KEY_FILE";
    case ONCE_ERR_EXISTS: return "EXISTS";
    case ONCE_ERR_TOO_MANY_IN_FLIGHT: return "TOO_MANY_IN_FLIGHT";
    default: return "UNKNOWN";
    }
}

int once_error_set(once_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (code < 0)
        code = -code;
    if (err != NULL) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return -code;
}

int once_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}
