/* procs.c: the process facts of live generations (see procs.h). */
#include "loop/procs.h"

#include "os/os.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned long long proc_start_ticks(pid_t pid)
{
    struct os_proc_stat st;
    return os_proc_stat(pid, &st) == 0 ? st.start_ticks : 0;
}

struct proc *procs_add(struct procs *p, unsigned id, pid_t pid, double now)
{
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct proc *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    struct proc *e = &p->v[p->len++];
    memset(e, 0, sizeof *e);
    e->id = id;
    e->pid = pid;
    e->started = now;
    e->pidfd = -1;
    e->start_ticks = proc_start_ticks(pid);
    if (id > p->last_id)
        p->last_id = id;
    return e;
}

struct proc *procs_by_id(struct procs *p, unsigned id)
{
    for (size_t i = 0; i < p->len; i++)
        if (p->v[i].id == id)
            return &p->v[i];
    return NULL;
}

struct proc *procs_by_pid(struct procs *p, pid_t pid)
{
    for (size_t i = 0; i < p->len; i++)
        if (p->v[i].pid == pid)
            return &p->v[i];
    return NULL;
}

void procs_remove(struct procs *p, unsigned id)
{
    for (size_t i = 0; i < p->len; i++)
        if (p->v[i].id == id) {
            p->v[i] = p->v[--p->len];
            return;
        }
}

int procs_signal(struct procs *p, unsigned id, int sig, int group)
{
    struct proc *e = procs_by_id(p, id);
    if (!e)
        return -ESRCH;
    if (kill(group ? -e->pid : e->pid, sig) < 0)
        return -errno;
    return 0;
}

void procs_kill_all(struct procs *p)
{
    for (size_t i = 0; i < p->len; i++)
        kill(-p->v[i].pid, SIGKILL);
}

void procs_free(struct procs *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}
