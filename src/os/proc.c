/* proc.c: the parts of os.h every platform shares, built on its own
 * calls (os_proc_stat), so they are written once. */
#include "os/os.h"

#include <errno.h>
#include <signal.h>

int os_proc_alive(pid_t pid, unsigned long long start_ticks)
{
    /* EPERM: it lives, as another user's. */
    if (kill(pid, 0) < 0 && errno != EPERM)
        return errno == ESRCH ? 0 : -errno;
    struct os_proc_stat st;
    int r = os_proc_stat(pid, &st);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    /* A zombie has exited: its parent, not us, will reap it. */
    return st.state != 'Z' && st.start_ticks == start_ticks;
}

const char *os_support_name(enum os_support s)
{
    return s == OS_NATIVE ? "native" : s == OS_FALLBACK ? "fallback" : "lost";
}
