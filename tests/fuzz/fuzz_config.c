/* libFuzzer: the service-file loader (lua/baton/config.lua, through the
 * bridge, with the policy sandbox and its load budget) on any file. */
#include "loop/config.h"
#include "lua/bridge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct bridge b;
static char path[64];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bridge_open(&b) < 0)
        abort();
    snprintf(path, sizeof path, "/tmp/baton-fuzz-config-%d.lua", (int)getpid());
    atexit(remove_file);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct service_config cfg;
    char err[4096];
    if (bridge_load_config(&b, path, "/tmp", &cfg, err, sizeof err) == 0)
        config_free(&cfg);
    return 0;
}
