#ifndef BATON_PROCS_H
#define BATON_PROCS_H

/* Process facts: one entry per live generation's main process.
 *
 * The supervisor forked these processes and reaps them; this table is what
 * the kernel and the processes told it: pid, start time, the last STATUS=
 * text. A generation's lifecycle (starting, ready, active, draining) is the
 * runtime's alone (lua/baton/gen.lua): an entry leaves this table the
 * moment its process has exited and the runtime was told. Entries are
 * looked up by id or pid each time: pointers are not kept across calls
 * that may add an entry. */

#include <stddef.h>
#include <sys/types.h>

struct proc {
    unsigned id;                    /* the generation: 1, 2, ... (BATON_GENERATION) */
    pid_t pid;                      /* main process; leader of its process group */
    double started;                 /* monotonic seconds */
    char status[256];               /* last STATUS= it sent */
    unsigned long long start_ticks; /* the kernel's start time: pid and this name it */
    /* An adopted process (a supervisor before this one, now dead, started
     * it: not our child, so no SIGCHLD), watched for its exit by the
     * supervisor through WATCH: a uv_poll_t on PIDFD (os_proc_watch_fd),
     * or where the host gives no such fd (PIDFD -1) a uv_timer_t that
     * polls os_proc_alive. ADOPTED 0, PIDFD -1 and WATCH NULL for our
     * children. */
    int adopted;
    int pidfd;
    void *watch;
};

/* PID's start time (clock ticks since boot, /proc/PID/stat field 22), or
 * 0 when it cannot be read or the process has ended (a zombie): with the pid, it names one process and no
 * later one that gets the same pid. */
unsigned long long proc_start_ticks(pid_t pid);

struct procs {
    struct proc *v; /* owned */
    size_t len, cap;
    unsigned last_id; /* the newest generation's id */
};

/* Adds generation ID's process. Returns it, or NULL when out of memory. */
struct proc *procs_add(struct procs *p, unsigned id, pid_t pid, double now);
struct proc *procs_by_id(struct procs *p, unsigned id);
struct proc *procs_by_pid(struct procs *p, pid_t pid);
void procs_remove(struct procs *p, unsigned id);
/* SIG to generation ID's main process, or (GROUP) its process group.
 * Returns 0, -ESRCH when it is not running, or another negative errno. */
int procs_signal(struct procs *p, unsigned id, int sig, int group);
/* SIGKILL to every process group. */
void procs_kill_all(struct procs *p);
void procs_free(struct procs *p);

#endif
