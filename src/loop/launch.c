/* launch.c: the launch plan of a generation (see launch.h). */
#include "loop/launch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strfmt(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* LISTEN_FDNAMES=: the listener names, then the stored fds' names. */
static char *fdnames(const struct launch_inputs *in)
{
    size_t len = sizeof "LISTEN_FDNAMES=" + strlen(in->stored_names) + 1;
    for (size_t i = 0; i < in->nlisteners; i++)
        len += strlen(in->listener_names[i]) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    char *p = s + sprintf(s, "LISTEN_FDNAMES=");
    for (size_t i = 0; i < in->nlisteners; i++)
        p += sprintf(p, "%s%s", i ? ":" : "", in->listener_names[i]);
    if (*in->stored_names)
        sprintf(p, "%s%s", in->nlisteners ? ":" : "", in->stored_names);
    return s;
}

void launch_plan_free(struct launch_plan *p)
{
    for (size_t i = 0; p->env && p->env[i]; i++)
        free(p->env[i]);
    free(p->env);
    free(p->fds);
    memset(p, 0, sizeof *p);
}

int launch_plan_build(struct launch_plan *p, const struct launch_inputs *in, char *err,
                      size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->out_fd = p->err_fd = -1;
    p->argv = in->argv;
    p->cwd = in->cwd;
    p->set_uid = in->set_uid;
    p->set_gid = in->set_gid;
    p->uid = in->uid;
    p->gid = in->gid;
    p->groups = in->groups;
    p->ngroups = in->ngroups;
    p->limits = in->limits;
    p->nlimits = in->nlimits;
    if (!in->argv || !in->argv[0]) {
        snprintf(err, errlen, "launch: no command");
        return -EINVAL;
    }
    p->listen_fds = in->nlisteners + in->nstored;
    p->nfds = p->listen_fds + 1;
    p->fds = malloc(p->nfds * sizeof *p->fds);
    size_t nenv = 0;
    while (in->env && in->env[nenv])
        nenv++;
    enum { OURS = 7 };
    p->env = calloc(nenv + OURS + 1, sizeof *p->env);
    if (!p->fds || !p->env)
        goto nomem;
    memcpy(p->fds, in->listener_fds, in->nlisteners * sizeof *p->fds);
    if (in->nstored)
        memcpy(p->fds + in->nlisteners, in->stored_fds, in->nstored * sizeof *p->fds);
    p->fds[p->listen_fds] = in->stats_fd;

    size_t k = 0;
    for (; k < nenv; k++)
        if (!(p->env[k] = strdup(in->env[k])))
            goto nomem;
    char *ours[OURS] = {
        strfmt("LISTEN_FDS=%zu", p->listen_fds),
        fdnames(in),
        strfmt("NOTIFY_SOCKET=%s", in->notify_path),
        strfmt("BATON_GENERATION=%u", in->generation),
        strfmt("BATON_CONTROL=%s", in->control_path),
        strfmt("BATON_STATS_FD=%zu", 3 + p->listen_fds),
        strfmt("BATON_STATE_NAME=%s", in->state_name),
    };
    int missing = 0;
    for (size_t i = 0; i < OURS; i++) {
        p->env[k++] = ours[i]; /* owned by the plan from here, even when NULL */
        missing |= ours[i] == NULL;
    }
    if (missing) {
        /* A NULL in the middle ends the vector early: free what follows it. */
        for (size_t i = nenv; i < nenv + OURS; i++)
            if (!p->env[i])
                for (size_t j = i + 1; j < nenv + OURS; j++) {
                    free(p->env[j]);
                    p->env[j] = NULL;
                }
        goto nomem;
    }
    return 0;
nomem:
    launch_plan_free(p);
    snprintf(err, errlen, "launch: out of memory");
    return -ENOMEM;
}

const char *launch_plan_getenv(const struct launch_plan *p, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; p->env && p->env[i]; i++)
        if (strncmp(p->env[i], name, n) == 0 && p->env[i][n] == '=')
            return p->env[i] + n + 1;
    return NULL;
}
