#ifndef BATON_LAUNCH_H
#define BATON_LAUNCH_H

/* The launch plan: everything a new generation gets, built in one place.
 *
 * The fd layout (systemd's, so unmodified socket-activated apps work):
 *
 *   fd 3 ..                    listeners, in the service file's order
 *   fd 3+nlisteners ..         the fd store (stored fds), in store order
 *   fd 3+LISTEN_FDS            the stats region (BATON_STATS_FD): after the
 *                              LISTEN_FDS ones, so an app that treats each
 *                              of those as a socket never sees it
 *
 * and the environment: the service file's env, then LISTEN_FDS (listeners
 * + stored fds), LISTEN_FDNAMES (their names, colon-separated),
 * NOTIFY_SOCKET, BATON_GENERATION, BATON_CONTROL, BATON_STATS_FD,
 * BATON_STATE_NAME. LISTEN_PID is the child's own pid: spawn.c writes it
 * after fork. stdout and stderr are the pipes the launcher gives (output.h),
 * or the supervisor's. The plan owns its env strings and its fd array; the fds
 * themselves stay their owners' (listeners, fd store, stats region). */

#include <stddef.h>
#include <sys/types.h>

struct config_limit; /* loop/config.h */

struct launch_plan {
    char *const *argv; /* borrowed, NULL-terminated */
    char **env;        /* owned, NULL-terminated "KEY=VALUE" */
    const char *cwd;   /* borrowed; NULL: the supervisor's */
    int *fds;          /* owned array: fds[i] goes to fd 3+i */
    size_t nfds;
    size_t listen_fds;  /* LISTEN_FDS: the first listen_fds of fds */
    int out_fd, err_fd; /* stdout, stderr (borrowed); -1: the supervisor's */
    /* Who it runs as and its resource limits (borrowed; see launch_inputs). */
    int set_uid, set_gid;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    const struct config_limit *limits;
    size_t nlimits;
};

struct launch_inputs {
    char *const *argv, *const *env; /* the service file's command and env */
    const char *cwd;
    const int *listener_fds;
    const char *const *listener_names;
    size_t nlisteners;
    const int *stored_fds;    /* the fd store's, for this spawn */
    const char *stored_names; /* their names, colon-separated ("" for none) */
    size_t nstored;
    int stats_fd;
    const char *notify_path, *control_path, *state_name;
    unsigned generation;
    /* The service file's `user`/`group` (set_*: change to them) with the
     * user's supplementary groups, and its `limits` (config.h). */
    int set_uid, set_gid;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    const struct config_limit *limits;
    size_t nlimits;
};

/* Builds the plan for IN. Returns 0, or -ENOMEM/-EINVAL with a reason in ERR. */
int launch_plan_build(struct launch_plan *p, const struct launch_inputs *in, char *err,
                      size_t errlen);
void launch_plan_free(struct launch_plan *p);
/* The value of variable NAME in the plan's environment, or NULL. */
const char *launch_plan_getenv(const struct launch_plan *p, const char *name);

#endif
