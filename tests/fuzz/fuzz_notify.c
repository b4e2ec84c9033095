/* libFuzzer: the notify parser (notify.c) on any datagram. */
#include "loop/notify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > NOTIFY_MAX)
        return 0; /* the socket drops longer datagrams before parsing */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct notify_msg m;
    if (notify_parse(text, &m) == 0) {
        /* What the parser hands on must be readable strings. */
        if (m.status)
            (void)strlen(m.status);
        if (m.fdname)
            (void)strlen(m.fdname);
    }
    free(text);
    return 0;
}
