/* keeper.c: what outlives the supervisor (see keeper.h). */
#include "handoff/keeper.h"

#include "base/fdpass.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

int keeper_send(int channel, const char *head, int fd)
{
    ssize_t r = fdpass_send(channel, NULL, 0, head, strlen(head), &fd, fd >= 0);
    return r < 0 ? (int)r : 0;
}

/* One message: its head (NUL-terminated in HEAD) and its fd (-1: none;
 * one a message: any more are closed). Returns the head's length, 0 at
 * the end, or a negative errno (-EMSGSIZE: the message was cut). */
static ssize_t receive(int channel, char *head, size_t len, int *fd)
{
    size_t nfds;
    ssize_t n = fdpass_recv(channel, head, len - 1, fd, 1, &nfds, 0);
    if (n < 0 || !nfds)
        *fd = -1;
    if (n >= 0)
        head[n] = '\0';
    return n;
}

int keeper_spawn(const char *binary, const char *path, pid_t *pid)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t p = os_fork_reset_signals(NULL);
    if (p == 0) {
        /* Its own session: a terminal's ^C is for the supervisor, which
         * then says goodbye. */
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(sv[1], 3) < 0)
            _exit(127);
        if (os_close_from(4) < 0)
            _exit(127);
        char *argv[] = { "baton-keeper", "keeper", (char *)path, NULL };
        execve(binary, argv, environ);
        _exit(127);
    }
    close(sv[1]);
    if (p < 0) {
        close(sv[0]);
        return p;
    }
    *pid = p;
    return sv[0];
}

int keeper_take(const char *path, pid_t pid, char heads[][32], int *fds, size_t max, char *err,
                size_t errlen)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof un.sun_path) {
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(un.sun_path, path);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&un, sizeof un) < 0) {
        int r = -errno;
        snprintf(err, errlen, "the keeper at %s: %s", path, strerror(errno));
        if (s >= 0)
            close(s);
        return r;
    }
    uid_t uid = (uid_t)-1;
    pid_t peer = 0;
    if (os_peer_uid(s, &uid, &peer) < 0 || uid != geteuid() || peer != pid) {
        snprintf(err, errlen, "the socket at %s is not the keeper pid %d of ours (pid %d, uid %u)",
                 path, (int)pid, (int)peer, (unsigned)uid);
        close(s);
        return -EPERM;
    }
    size_t n = 0;
    for (;;) {
        char head[32];
        int fd;
        struct pollfd pf = { .fd = s, .events = POLLIN };
        if (poll(&pf, 1, 5000) <= 0) {
            snprintf(err, errlen, "the keeper did not hand over within 5 s");
            break;
        }
        ssize_t r = receive(s, head, sizeof head, &fd);
        if (r <= 0) {
            snprintf(err, errlen, "the keeper hung up before its end: %s",
                     r < 0 ? strerror((int)-r) : "closed");
            break;
        }
        if (strcmp(head, "E") == 0) {
            close(s);
            return (int)n;
        }
        if (n == max || fd < 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        snprintf(heads[n], 32, "%s", head);
        fds[n++] = fd;
    }
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    close(s);
    return -EPROTO;
}

/* --- the keeper's side ------------------------------------------------------ */

struct held {
    char head[32];
    int fd;
    int pipe; /* a generation's output: read once orphaned */
};

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int peer_ours(int c)
{
    uid_t uid;
    return os_peer_uid(c, &uid, NULL) == 0 && uid == geteuid();
}

int keeper_main(const char *path)
{
    static struct held h[KEEPER_MAX_FDS];
    /* Its name in ps and in "held by pid N (NAME)": not "exe". */
    os_set_name("baton-keeper");
    size_t n = 0;
    int channel = 3, server = -1;
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    while (!stop) {
        struct pollfd pf[KEEPER_MAX_FDS + 2];
        size_t np = 0, pipes = 0;
        if (channel >= 0)
            pf[np++] = (struct pollfd){ .fd = channel, .events = POLLIN };
        if (server >= 0)
            pf[np++] = (struct pollfd){ .fd = server, .events = POLLIN };
        size_t first = np;
        for (size_t i = 0; i < n; i++) {
            /* Alive: only a hang-up matters (the supervisor reads them). */
            pf[np++] = (struct pollfd){ .fd = h[i].pipe ? h[i].fd : -1,
                                        .events = channel < 0 ? POLLIN : 0 };
            pipes += h[i].pipe;
        }
        if (channel < 0 && pipes == 0)
            break; /* orphaned, and no generation left: nothing to take back */
        if (poll(pf, np, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t i = 0, k = first; i < n; i++, k++) {
            if (!h[i].pipe || !pf[k].revents)
                continue;
            char buf[65536];
            ssize_t r = pf[k].revents & POLLIN ? read(h[i].fd, buf, sizeof buf) : 0;
            if (r > 0) {
                ssize_t w = write(2, buf, (size_t)r); /* what an app said meanwhile */
                (void)w;
            } else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                close(h[i].fd);
                h[i] = h[--n];
                i--;
                /* The poll slots no longer match: take them again. */
                break;
            }
        }
        if (channel >= 0 && pf[0].revents) {
            char head[32];
            int fd;
            ssize_t r = receive(channel, head, sizeof head, &fd);
            if (r > 0 && strcmp(head, "B") == 0)
                break;
            /* A head held already (an upgraded supervisor attaches its
             * carried pipes again) names the same thing: one copy, the
             * newest, so a keeper holds two pipes a generation however
             * many upgrades came. */
            size_t at = n;
            for (size_t i = 0; r > 0 && fd >= 0 && i < n; i++)
                if (strcmp(h[i].head, head) == 0)
                    at = i;
            if (r > 0 && fd >= 0 && at == n && n == KEEPER_MAX_FDS) {
                dprintf(2, "baton-keeper[%d]: already holding %d fds: not keeping '%s'\n",
                        (int)getpid(), KEEPER_MAX_FDS, head);
                close(fd);
            } else if (r > 0 && fd >= 0) {
                if (at < n)
                    close(h[at].fd);
                snprintf(h[at].head, sizeof h[at].head, "%s", head);
                h[at].fd = fd;
                h[at].pipe = head[0] == 'P';
                if (h[at].pipe)
                    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                n += at == n;
            } else if (fd >= 0) {
                close(fd);
            }
            if (r <= 0 && r != -EINTR) {
                /* The supervisor died: answer a taker from now on. */
                close(channel);
                channel = -1;
                struct sockaddr_un un = { .sun_family = AF_UNIX };
                snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
                unlink(path);
                server = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                mode_t old = umask(0177);
                if (server < 0 || bind(server, (struct sockaddr *)&un, sizeof un) < 0 ||
                    listen(server, 4) < 0) {
                    umask(old);
                    break;
                }
                umask(old);
                dprintf(2,
                        "baton-keeper[%d]: the supervisor is gone; holding %zu fd(s) for "
                        "`baton run` to take back\n",
                        (int)getpid(), n);
            }
        } else if (server >= 0 && pf[channel >= 0 ? 1 : 0].revents) {
            // cppcheck-suppress nullPointer ; accept4 takes NULL for an address not wanted
            int c = accept4(server, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            if (!peer_ours(c)) {
                close(c);
                continue;
            }
            int ok = 1;
            for (size_t i = 0; ok && i < n; i++)
                ok = keeper_send(c, h[i].head, h[i].fd) == 0;
            if (ok && keeper_send(c, "E", -1) == 0) {
                close(c);
                unlink(path);
                return 0; /* handed over: the new supervisor has its own keeper */
            }
            close(c);
        }
    }
    if (server >= 0)
        unlink(path);
    return 0;
}
