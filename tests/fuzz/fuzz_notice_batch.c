/*
 * fuzz_notice_batch.c - libonce's reading of what the broker sends a
 * subscriber (docs/PROTOCOL.md 4.9): a NoticeBatch, pushed unasked or as
 * the answer to an acknowledgement or a pull (client_notice_batch_parse
 * in lib/client_notices.c), and the queueing of a push. The broker is
 * authenticated by CURVE, but a client must not crash on a broken or
 * hostile one either. Properties checked besides not crashing or
 * leaking: a batch that passes holds at most WIRE_MAX_NOTICES notices,
 * each with names within their limits and a known event, and no field
 * once.proto does not define.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "once.pb-c.h"
#include "wire_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int property)
{
    if (!property)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1];
    struct client_notices *queue = NULL;
    Once__NoticeBatch *b = NULL;
    size_t i;

    if (size == 0)
        data = empty; /* never a NULL pointer into protobuf-c */
    if (client_notice_batch_parse(data, size, &b, NULL) == 0) {
        require(b != NULL && b->n_notices <= WIRE_MAX_NOTICES);
        require(b->base.n_unknown_fields == 0);
        for (i = 0; i < b->n_notices; i++) {
            require(strlen(b->notices[i]->type) <= ONCE_MAX_NAME);
            require(strlen(b->notices[i]->subject) <= ONCE_MAX_SUBJECT);
            require(b->notices[i]->event ==
                        ONCE__NOTICE_EVENT__NOTICE_EVENT_NEW_VERSION ||
                    b->notices[i]->event ==
                        ONCE__NOTICE_EVENT__NOTICE_EVENT_REVOKED);
        }
        once__notice_batch__free_unpacked(b, NULL);
    } else {
        require(b == NULL);
    }
    /* The queue the core hands pushes to: twice, so a full one too. */
    for (i = 0; i < 2; i++)
        client_notices_received(NULL, &queue, data, size);
    client_notices_free(queue);
    return 0;
}
