/* libFuzzer: a control request line (control.c) as the server parses it. */
#include "loop/control.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CONTROL_MAX)
        return 0; /* the server refuses a longer request before parsing */
    json_t *req;
    const char *cmd;
    char err[256];
    if (control_parse((const char *)data, size, &req, &cmd, err, sizeof err) == 0) {
        (void)strlen(cmd);
        json_decref(req);
    } else {
        (void)strlen(err);
    }
    return 0;
}
