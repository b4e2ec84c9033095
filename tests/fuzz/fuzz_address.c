/* libFuzzer: the listener address parser (listeners.c). */
#include "loop/listeners.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *address = malloc(size + 1);
    if (!address)
        return 0;
    memcpy(address, data, size);
    address[size] = '\0';
    struct listener l = { .fd = -1 };
    char err[256];
    if (listener_parse(&l, address, err, sizeof err) == 0 && l.kind == LISTENER_UNIX)
        (void)strlen(((const char *)&l.addr) + 2); /* sun_path: terminated */
    free(address);
    return 0;
}
