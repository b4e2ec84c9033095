/* keeper.c: what outlives the supervisor (see keeper.h). */
#include "handoff/keeper.h"

#include "base/clock.h"
#include "base/fdpass.h"
#include "base/log.h"
#include "base/nofile.h"
#include "base/sanitize.h"
#include "loop/procs.h"
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
static ssize_t receive(int channel, char *head, size_t len, int *fd, int flags)
{
    size_t nfds;
    ssize_t n = fdpass_recv(channel, head, len - 1, fd, 1, &nfds, flags);
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

void keeper_pieces_free(struct keeper_piece *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    free(p);
}

int keeper_take(const char *path, pid_t pid, struct keeper_piece **pieces, int *conn, char *err,
                size_t errlen)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    *pieces = NULL;
    *conn = -1;
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
    if (os_peer_uid(s, &uid, &peer) < 0 || uid != geteuid() ||
        (peer != 0 && peer != pid)) { /* 0: a platform that does not say (FreeBSD 12) */
        snprintf(err, errlen, "the socket at %s is not the keeper pid %d of ours (pid %d, uid %u)",
                 path, (int)pid, (int)peer, (unsigned)uid);
        close(s);
        return -EPERM;
    }
    struct keeper_piece *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        char head[32];
        int fd;
        /* The keeper serves one taker at a time: another one's turn (up to
         * KEEPER_CONFIRM_S) may come before ours. */
        struct pollfd pf = { .fd = s, .events = POLLIN };
        if (poll(&pf, 1, (KEEPER_CONFIRM_S + 5) * 1000) <= 0) {
            snprintf(err, errlen, "the keeper did not hand over within %d s", KEEPER_CONFIRM_S + 5);
            break;
        }
        ssize_t r = receive(s, head, sizeof head, &fd, 0);
        if (r <= 0) {
            snprintf(err, errlen, "the keeper hung up before its end: %s",
                     r < 0 ? strerror((int)-r) : "closed (another supervisor took it over?)");
            break;
        }
        if (strcmp(head, "E") == 0) {
            *pieces = p;
            *conn = s;
            return (int)n;
        }
        if (fd < 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct keeper_piece *np = realloc(p, ncap * sizeof *p);
            if (!np) {
                close(fd);
                snprintf(err, errlen, "out of memory for %zu fds", ncap);
                break;
            }
            p = np;
            cap = ncap;
        }
        snprintf(p[n].head, sizeof p[n].head, "%s", head);
        p[n++].fd = fd;
    }
    keeper_pieces_free(p, n);
    close(s);
    return -EPROTO;
}

int keeper_confirm(int conn)
{
    int r = keeper_send(conn, "K", -1);
    close(conn);
    return r;
}

/* --- the keeper's side ------------------------------------------------------ */

struct held {
    char head[KEEPER_HEAD_MAX];
    int fd;
    int pipe; /* a generation's output: read once orphaned */
    unsigned gen;
    int stream;
    char *line; /* the line it is in (KEEPER_LINE_MAX), once read */
    size_t len;
};

/* A line an app prints is cut at this length, as the supervisor's are
 * (OUTPUT_LINE_MAX). */
#define KEEPER_LINE_MAX 4096

static struct held *held;
static size_t nheld, capheld;

/* Each generation's main process, as the supervisor said ("G"): once
 * orphaned, the keeper ends when the last is gone, whoever still holds a
 * pipe (a detached helper of the app's, say). */
struct gen {
    unsigned id;
    pid_t pid;
    unsigned long long ticks;
};
#define KEEPER_MAX_GENS 1024
static struct gen gens[KEEPER_MAX_GENS];
static size_t ngens;

static int gen_alive(const struct gen *g)
{
    return g->pid > 0 && proc_start_ticks(g->pid) == g->ticks;
}

/* Forgets the generations whose process is gone. Returns how many are left. */
static size_t gens_prune(void)
{
    for (size_t i = 0; i < ngens;)
        if (gen_alive(&gens[i]))
            i++;
        else
            gens[i] = gens[--ngens];
    return ngens;
}

/* "G ID PID TICKS". */
static void hold_generation(const char *head)
{
    struct gen g;
    int pid;
    if (sscanf(head, "G %u %d %llu", &g.id, &pid, &g.ticks) != 3)
        return;
    g.pid = (pid_t)pid;
    gens_prune();
    for (size_t i = 0; i < ngens; i++)
        if (gens[i].id == g.id) {
            gens[i] = g;
            return;
        }
    if (ngens < KEEPER_MAX_GENS)
        gens[ngens++] = g;
}

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int peer_ours(int c, pid_t *pid)
{
    uid_t uid;
    return os_peer_uid(c, &uid, pid) == 0 && uid == geteuid();
}

#define say(...) dprintf(2, "baton-keeper[%d]: " __VA_ARGS__)

/* Keeps FD under HEAD. A head held already (an upgraded supervisor
 * attaches its carried pipes again) names the same thing: one copy, the
 * newest, so a keeper holds two pipes a generation however many upgrades
 * came. */
static void hold(const char *head, int fd)
{
    size_t at = nheld;
    for (size_t i = 0; i < nheld; i++)
        if (strcmp(held[i].head, head) == 0)
            at = i;
    if (at == nheld && nheld == capheld) {
        size_t ncap = capheld ? capheld * 2 : 64;
        struct held *nh = realloc(held, ncap * sizeof *held);
        if (!nh) {
            say("out of memory: not keeping '%s'\n", (int)getpid(), head);
            close(fd);
            return;
        }
        held = nh;
        capheld = ncap;
    }
    if (at < nheld) {
        close(held[at].fd);
        free(held[at].line);
    }
    snprintf(held[at].head, sizeof held[at].head, "%s", head);
    held[at].fd = fd;
    held[at].pipe = sscanf(head, "P %u %d", &held[at].gen, &held[at].stream) == 2;
    held[at].line = NULL;
    held[at].len = 0;
    if (held[at].pipe)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    nheld += at == nheld;
}

/* Answers a taker from now on, at PATH. Returns the server's fd or -1. */
static int serve_at(const char *path)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    unlink(path);
    int server = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    if (server < 0 || bind(server, (struct sockaddr *)&un, sizeof un) < 0 ||
        listen(server, 4) < 0) {
        umask(old);
        say("cannot answer at %s: %s\n", (int)getpid(), path, strerror(errno));
        if (server >= 0)
            close(server);
        return -1;
    }
    umask(old);
    return server;
}

/* One line of H's, as the supervisor would show it (sanitize.h), tagged
 * with its generation. */
static void relay_line(struct held *h)
{
    static char safe[SANITIZE_MAX(KEEPER_LINE_MAX)];
    sanitize_line(h->line, h->len, safe, sizeof safe);
    h->len = 0;
    log_app_line(h->gen, h->stream == 1 ? "stdout" : "stderr", safe);
}

/* Relays what a generation printed while no supervisor reads its pipe
 * (so no app blocks on a full one), line by line. Returns 0, or -1 once
 * every writer is gone (a last line without its newline relayed). */
static int relay(struct held *h)
{
    char buf[65536];
    if (!h->line && !(h->line = malloc(KEEPER_LINE_MAX)))
        return -1;
    ssize_t r = read(h->fd, buf, sizeof buf);
    for (ssize_t i = 0; i < r; i++) {
        if (buf[i] == '\n') {
            relay_line(h);
            continue;
        }
        if (h->len == KEEPER_LINE_MAX)
            relay_line(h); /* cut: the rest is a line of its own */
        h->line[h->len++] = buf[i];
    }
    if (r > 0 || (r < 0 && (errno == EINTR || errno == EAGAIN)))
        return 0;
    if (h->len)
        relay_line(h);
    return -1;
}

/* Lets go of held[I]. */
static void forget(size_t i)
{
    close(held[i].fd);
    free(held[i].line);
    held[i] = held[--nheld];
}

int keeper_main(const char *path)
{
    /* Its name in ps and in "held by pid N (NAME)": not "exe". */
    os_set_name("baton-keeper");
    /* Any number of listeners: as many fds as the hard limit allows. */
    nofile_raise();
    int channel = 3, server = -1, taker = -1, told_gens = 0;
    pid_t taker_pid = 0;
    double taker_until = 0;
    struct pollfd *pf = NULL;
    size_t cappf = 0;
    struct sigaction sa = { .sa_handler = on_term };
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    while (!stop) {
        if (cappf < nheld + 3) {
            struct pollfd *np = realloc(pf, (nheld + 64) * sizeof *pf);
            if (!np) {
                say("out of memory\n", (int)getpid());
                break;
            }
            pf = np;
            cappf = nheld + 64;
        }
        size_t np = 0, pipes = 0;
        long ich = -1, isrv = -1, itk = -1;
        if (channel >= 0)
            ich = (long)np, pf[np++] = (struct pollfd){ .fd = channel, .events = POLLIN };
        if (server >= 0 && taker < 0)
            isrv = (long)np, pf[np++] = (struct pollfd){ .fd = server, .events = POLLIN };
        if (taker >= 0)
            itk = (long)np, pf[np++] = (struct pollfd){ .fd = taker, .events = POLLIN };
        size_t first = np;
        for (size_t i = 0; i < nheld; i++) {
            /* Alive: only a hang-up matters (the supervisor reads them).
             * While a taker takes over, the pipes are its to read. */
            pf[np++] = (struct pollfd){ .fd = held[i].pipe && taker < 0 ? held[i].fd : -1,
                                        .events = channel < 0 ? POLLIN : 0 };
            pipes += held[i].pipe;
        }
        if (channel < 0 && taker < 0 && pipes == 0)
            break; /* orphaned, and no generation left: nothing to take back */
        if (channel < 0 && taker < 0 && told_gens && gens_prune() == 0) {
            /* Nothing it holds still serves: the listeners close with it,
             * and clients are refused instead of waiting in a queue no
             * one will accept from. */
            say("the last generation is gone: closing the listeners (clients are refused from "
                "now on)\n",
                (int)getpid());
            break;
        }
        int timeout = channel < 0 && told_gens ? 1000 : -1; /* to see a generation go */
        if (taker >= 0) {
            double left = taker_until - clock_mono();
            timeout = left > 0 ? (int)(left * 1000) + 1 : 0;
        }
        int ready = poll(pf, np, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (taker >= 0 && (ready == 0 || pf[itk].revents)) {
            char head[32];
            int fd = -1;
            ssize_t r = ready ? receive(taker, head, sizeof head, &fd, MSG_DONTWAIT) : -ETIMEDOUT;
            if (fd >= 0)
                close(fd);
            if (r > 0 && strcmp(head, "K") == 0) {
                close(taker);
                taker = -1;
                close(server);
                server = -1;
                unlink(path);
                say("handed over to the supervisor pid %d, which has a keeper of its own\n",
                    (int)getpid(), (int)taker_pid);
                break;
            }
            if (r != -EAGAIN && r != -EINTR) {
                /* It failed, was killed or hangs: what it took may be
                 * gone with it; ours are not. */
                say("the supervisor pid %d that took the service did not confirm (%s): still "
                    "holding %zu fd(s) for the next `baton run`\n",
                    (int)getpid(), (int)taker_pid,
                    r == 0  ? "it hung up"
                    : r > 0 ? "an unknown message"
                            : strerror((int)-r),
                    nheld);
                close(taker);
                taker = -1;
            }
            continue;
        }
        for (size_t i = 0, k = first; i < nheld; i++, k++) {
            if (!held[i].pipe || !pf[k].revents)
                continue;
            if ((pf[k].revents & POLLIN ? relay(&held[i]) : -1) < 0) {
                forget(i);
                /* The poll slots no longer match: take them again. */
                break;
            }
        }
        if (ich >= 0 && pf[ich].revents) {
            char head[KEEPER_HEAD_MAX];
            int fd;
            ssize_t r = receive(channel, head, sizeof head, &fd, 0);
            if (r > 0 && strcmp(head, "B") == 0)
                break;
            if (r > 0 && fd >= 0)
                hold(head, fd);
            else if (fd >= 0)
                close(fd);
            else if (r > 0 && strncmp(head, "X ", 2) == 0) {
                for (size_t i = 0; i < nheld; i++)
                    if (strcmp(held[i].head, head + 2) == 0) {
                        forget(i);
                        break;
                    }
            } else if (r > 0 && head[0] == 'G') {
                hold_generation(head);
                told_gens = 1;
            }
            if (r == -EMSGSIZE) /* the supervisor lives: only that piece is lost */
                say("a message from the supervisor was cut (the open-file limit?)\n",
                    (int)getpid());
            else if (r <= 0 && r != -EINTR) {
                /* The supervisor died: answer a taker from now on. */
                close(channel);
                channel = -1;
                if ((server = serve_at(path)) < 0)
                    break;
                say("the supervisor is gone; holding %zu fd(s) for `baton run` to take back\n",
                    (int)getpid(), nheld);
            }
        } else if (isrv >= 0 && pf[isrv].revents) {
            // cppcheck-suppress nullPointer ; accept4 takes NULL for an address not wanted
            int c = accept4(server, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            pid_t who = 0;
            if (!peer_ours(c, &who)) {
                close(c);
                continue;
            }
            /* The first phase: copies, ours kept. The second: the taker
             * says it holds them in a keeper of its own ("K"), and only
             * then do ours go. */
            int ok = 1;
            for (size_t i = 0; ok && i < nheld; i++)
                ok = keeper_send(c, held[i].head, held[i].fd) == 0;
            if (ok && keeper_send(c, "E", -1) == 0) {
                taker = c;
                taker_pid = who;
                taker_until = clock_mono() + KEEPER_CONFIRM_S;
            } else {
                close(c);
            }
        }
    }
    if (server >= 0) {
        close(server);
        unlink(path);
    }
    if (taker >= 0)
        close(taker);
    while (nheld > 0)
        forget(nheld - 1);
    free(held);
    free(pf);
    return 0;
}
