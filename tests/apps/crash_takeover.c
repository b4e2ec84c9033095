/* An LD_PRELOAD library for tests/e2e/upgrade.sh: makes a baton image
 * crash (a real SIGSEGV: a write through NULL) in the middle of taking
 * over after `baton upgrade`, at its CRASH_AT-th uv_pipe_open (default 1:
 * the control socket, with some of the carried fds already taken), to show
 * that the old image comes back. Inert in any process that is not an image
 * taking over (no BATON_CARRY_FD, or BATON_UPGRADE_FAILED set: the old
 * image coming back), and it takes itself out of the environment, so
 * nothing the image starts, nor the old image, loads it again. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <uv.h>

static int armed, left = 1;

__attribute__((constructor)) static void init(void)
{
    armed = getenv("BATON_CARRY_FD") && !getenv("BATON_UPGRADE_FAILED");
    const char *n = getenv("CRASH_AT");
    if (n)
        left = atoi(n);
    unsetenv("LD_PRELOAD");
    unsetenv("CRASH_AT");
}

int uv_pipe_open(uv_pipe_t *pipe, uv_file fd)
{
    static int (*real)(uv_pipe_t *, uv_file);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "uv_pipe_open");
    if (armed && --left == 0)
        *(volatile int *)0 = 1;
    return real(pipe, fd);
}
