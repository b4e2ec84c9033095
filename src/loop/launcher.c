/* launcher.c: plan, spawn, enter in the process table (see launcher.h). */
#include "loop/launcher.h"

#include "loop/launch.h"
#include "base/nofile.h"
#include "loop/spawn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

/* Binds a socket of its own for generation GEN's per_generation listener
 * SHARED: 0 with *FD and *PORT, or a negative errno with a reason in ERR. */
static int bind_private(const struct listener *shared, int *fd, unsigned short *port, char *err,
                        size_t errlen)
{
    struct listener own = *shared;
    own.fd = -1;
    int r = listener_bind(&own, err, errlen);
    if (r < 0)
        return r;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(own.fd, (struct sockaddr *)&ss, &sl) < 0) {
        r = -errno;
        close(own.fd);
        snprintf(err, errlen, "listener '%s': getsockname: %s", shared->name, strerror(-r));
        return r;
    }
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    *fd = own.fd;
    return 0;
}

/* A spawn that failed after its steered members joined: they leave. */
static void unjoin(struct launcher *l, unsigned gen)
{
    if (l->steer)
        steer_gen_exited(l->steer, gen);
}

static void close_private(const struct service_config *cfg, const int *lfds)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].per_generation && lfds[i] >= 0)
            close(lfds[i]);
}

int launcher_spawn(struct launcher *l, enum spawn_state mode, double now, unsigned *id, pid_t *pid,
                   unsigned short *ports, char *err, size_t errlen)
{
    const struct service_config *cfg = l->cfg;
    unsigned next = l->procs->last_id + 1;
    int *stored;
    size_t nstored;
    char *stored_names;
    err[0] = '\0';
    int r = handover_fds(l->handover, mode, &stored, &nstored, &stored_names, err, errlen);
    if (r < 0)
        return r;
    int lfds[cfg->nlisteners + 1];
    const char *lnames[cfg->nlisteners + 1];
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        lfds[i] = cfg->listeners[i].per_generation ? -1 : cfg->listeners[i].fd;
        lnames[i] = cfg->listeners[i].name;
        ports[i] = 0;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if ((cfg->listeners[i].per_generation &&
             (r = bind_private(&cfg->listeners[i], &lfds[i], &ports[i], err, errlen)) < 0) ||
            (cfg->listeners[i].steer &&
             (r = steer_join(l->steer, i, next, &lfds[i], err, errlen)) < 0)) {
            close_private(cfg, lfds);
            unjoin(l, next);
            free(stored);
            free(stored_names);
            return r;
        }
    }
    struct launch_inputs in = {
        .argv = cfg->argv,
        .env = cfg->env,
        .cwd = cfg->cwd,
        .set_uid = cfg->set_uid,
        .set_gid = cfg->set_gid,
        .uid = cfg->uid,
        .gid = cfg->gid,
        .groups = cfg->groups,
        .ngroups = cfg->ngroups,
        .limits = cfg->limits,
        .nlimits = cfg->nlimits,
        .listener_fds = lfds,
        .listener_names = lnames,
        .nlisteners = cfg->nlisteners,
        .stored_fds = stored,
        .stored_names = stored_names,
        .nstored = nstored,
        .stats_fd = l->stats->fd,
        .notify_path = l->notify_path,
        .control_path = cfg->control,
        .state_name = cfg->state_name,
        .generation = next,
    };
    struct launch_plan plan;
    r = launch_plan_build(&plan, &in, err, errlen);
    free(stored);
    free(stored_names);
    if (r < 0) {
        close_private(cfg, lfds);
        unjoin(l, next);
        return r;
    }
    /* Its stdout and stderr: pipes whose read ends the supervisor keeps. */
    int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        r = -errno;
        char fds[64];
        nofile_describe(fds, sizeof fds);
        snprintf(err, errlen, "output pipes: %s%s%s%s", strerror(-r),
                 r == -EMFILE ? ": the supervisor ran short of fds (" : " (", fds, ")");
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (errp[i] >= 0)
                close(errp[i]);
        }
        launch_plan_free(&plan);
        close_private(cfg, lfds);
        unjoin(l, next);
        return r;
    }
    plan.out_fd = out[1];
    plan.err_fd = errp[1];
    stats_assign_lane(l->stats, next);
    r = spawn_process(&plan, pid, err, errlen);
    launch_plan_free(&plan);
    close_private(cfg, lfds); /* the generation holds them now */
    close(out[1]);
    close(errp[1]);
    if (r < 0) {
        close(out[0]);
        close(errp[0]);
        unjoin(l, next);
        return r;
    }
    output_attach(l->output, next, 1, out[0]);
    output_attach(l->output, next, 2, errp[0]);
    handover_spawned(l->handover, mode);
    if (!procs_add(l->procs, next, *pid, now)) {
        /* Cannot track it: do not leave an app we cannot drain. */
        kill(-*pid, SIGKILL);
        unjoin(l, next);
        snprintf(err, errlen, "out of memory for the process table");
        return -ENOMEM;
    }
    *id = next;
    return 0;
}
