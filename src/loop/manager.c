/* manager.c: the service manager above the supervisor (see manager.h). */
#include "loop/manager.h"

#include "base/fdpass.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int manager_init(struct manager *m)
{
    memset(m, 0, sizeof *m);
    const char *ns = getenv("NOTIFY_SOCKET");
    if (ns && (ns[0] == '/' || ns[0] == '@') && strlen(ns) < sizeof m->notify)
        snprintf(m->notify, sizeof m->notify, "%s", ns);
    unsetenv("NOTIFY_SOCKET");

    const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
    const char *names = getenv("LISTEN_FDNAMES");
    int r = 0;
    if (fds && pid) {
        char *end;
        long n = strtol(fds, &end, 10);
        long p = strtol(pid, NULL, 10);
        if (p != (long)getpid()) {
            log_info("LISTEN_FDS is for pid %ld, not this one: ignored", p);
        } else if (*end || n < 0 || n > MANAGER_MAX_FDS) {
            log_error("LISTEN_FDS=%s from the service manager is not a count: ignored", fds);
            r = -EINVAL;
        } else {
            char *list = names ? strdup(names) : NULL, *save = NULL;
            char *tok = list ? strtok_r(list, ":", &save) : NULL;
            for (long i = 0; i < n; i++) {
                m->fds[i] = 3 + (int)i;
                m->names[i] = strdup(tok ? tok : "unknown");
                fcntl(m->fds[i], F_SETFD, FD_CLOEXEC);
                tok = tok ? strtok_r(NULL, ":", &save) : NULL;
            }
            m->nfds = (size_t)n;
            free(list);
        }
    }
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    return r;
}

int manager_take(struct manager *m, const char *name)
{
    for (size_t i = 0; i < m->nfds; i++)
        if (m->fds[i] >= 0 && strcmp(m->names[i], name) == 0) {
            int fd = m->fds[i];
            m->fds[i] = -1;
            return fd;
        }
    return -1;
}

void manager_close_untaken(struct manager *m)
{
    for (size_t i = 0; i < m->nfds; i++)
        if (m->fds[i] >= 0) {
            log_warn("the service manager passed a socket named '%s' (fd %d) that no listener "
                     "of the service file is named: closed",
                     m->names[i], m->fds[i]);
            close(m->fds[i]);
            m->fds[i] = -1;
        }
}

/* TEXT to NOTIFY_SOCKET, with PASS (>= 0) attached as SCM_RIGHTS. */
static int send_notify(const struct manager *m, const char *text, int pass)
{
    if (!m->notify[0])
        return 0;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    size_t len = strlen(m->notify);
    memcpy(un.sun_path, m->notify, len);
    if (un.sun_path[0] == '@')
        un.sun_path[0] = '\0'; /* the abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n = fdpass_send(fd, (struct sockaddr *)&un,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len), text,
                            strlen(text), &pass, pass >= 0);
    close(fd);
    return n < 0 ? (int)n : 1;
}

int manager_notify(const struct manager *m, const char *text)
{
    return send_notify(m, text, -1);
}

int manager_store_fd(const struct manager *m, const char *name, int fd)
{
    char text[320];
    snprintf(text, sizeof text, "FDSTORE=1\nFDNAME=%s", name);
    return send_notify(m, text, fd);
}

void manager_free(struct manager *m)
{
    for (size_t i = 0; i < m->nfds; i++)
        free(m->names[i]);
    memset(m, 0, sizeof *m);
}
