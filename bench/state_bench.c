/* state_bench: what it costs to hand state to the next generation, against
 * copying the same bytes through a unix socket, in the same run.
 *
 * baton's way, with the calls the real path makes:
 *   store   the old generation: baton_state_save (memfd, write, CRC-32C,
 *           seal) and FDSTORE=1 over a real datagram socket (SCM_RIGHTS)
 *   check   the supervisor: receives the fd and checks the blob as it does
 *           on arrival (seals, header, CRC-32C over every byte)
 *   load    a new process (fork + exec of this binary, the fd at 3 with
 *           LISTEN_FDS/LISTEN_FDNAMES): baton_state_load, which maps it and
 *           checks it again, then reads every byte
 * The baseline: a new process (the same fork + exec) receives the bytes
 * through a SOCK_STREAM socketpair into memory of its own and reads every
 * byte (no integrity check at all).
 *
 *   state_bench [SIZE ...]      sizes like 1M 100M 1G (default: 1M 100M 1G)
 *
 * Prints one line per size: the handover's steps, its total, the socket
 * copy, and their ratio (best of 3 rounds each).
 *
 * `state_bench --app SIZE` is the app side for bench/state_memory.sh: under
 * baton, it loads the state it received (printing how long that took), and
 * on SIGUSR1 saves SIZE bytes of state; it exits on SIGTERM. */
#include "baton.h"
#include "state_blob.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'G':
    case 'g': v *= 1 << 30; break;
    case 'M':
    case 'm': v *= 1 << 20; break;
    case 'K':
    case 'k': v *= 1 << 10; break;
    case '\0': break;
    default: return 0;
    }
    return (size_t)v;
}

/* Reads every byte, so that a mapping is really faulted in and the copy
 * really used: what an app that restores its state does at least. */
static uint64_t touch(const unsigned char *p, size_t len)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i += 64)
        sum += p[i];
    return sum;
}

static char *self_path;

/* --- children: the "new generation" of each way ----------------------------- */

static int child_load(void)
{
    struct baton_state st;
    int r = baton_state_load(&st);
    if (r < 0) {
        fprintf(stderr, "state_bench: load: %s\n", strerror(-r));
        return 1;
    }
    volatile uint64_t sum = touch(st.data, st.len);
    (void)sum;
    baton_state_release(&st);
    return 0;
}

static int child_recv(size_t len)
{
    unsigned char *buf = malloc(len);
    if (!buf)
        return 1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(3, buf + got, len - got);
        if (n <= 0)
            return 1;
        got += (size_t)n;
    }
    volatile uint64_t sum = touch(buf, len);
    (void)sum;
    free(buf);
    return 0;
}

/* Starts this binary as MODE with FD at 3; returns its pid. */
static pid_t spawn_child(const char *mode, int fd, size_t len)
{
    char lenbuf[32];
    snprintf(lenbuf, sizeof lenbuf, "%zu", len);
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(fd, 3) < 0)
            _exit(127);
        char pidbuf[32];
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
        setenv("LISTEN_PID", pidbuf, 1);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_FDNAMES", "state", 1);
        execl(self_path, self_path, mode, lenbuf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_ok(pid_t pid)
{
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* --- the two ways ----------------------------------------------------------- */

struct handover_times {
    double store, check, load, total;
};

static int handover(const void *buf, size_t len, const char *sock_path, int sock,
                    struct handover_times *t)
{
    double t0 = now();
    if (baton_state_save(buf, len, 1) != 1)
        return -1;
    double t1 = now();
    char text[256];
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = { .iov_base = text, .iov_len = sizeof text };
    struct msghdr mh = { .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.b,
                         .msg_controllen = sizeof control.b };
    if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) <= 0 || !CMSG_FIRSTHDR(&mh))
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof fd);
    struct state_blob b;
    char err[256];
    if (state_blob_open(fd, UINT64_MAX, STATE_BLOB_VERIFY, &b, err, sizeof err) < 0) {
        fprintf(stderr, "state_bench: check: %s\n", err);
        return -1;
    }
    state_blob_close(&b);
    double t2 = now();
    pid_t pid = spawn_child("--child-load", fd, len);
    int ok = wait_ok(pid);
    close(fd);
    double t3 = now();
    (void)sock_path;
    *t = (struct handover_times){ t1 - t0, t2 - t1, t3 - t2, t3 - t0 };
    return ok ? 0 : -1;
}

static int socket_copy(const void *buf, size_t len, double *total)
{
    double t0 = now();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t pid = spawn_child("--child-recv", sv[1], len);
    close(sv[1]);
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(sv[0], p, left);
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    close(sv[0]);
    int ok = wait_ok(pid) && left == 0;
    *total = now() - t0;
    return ok ? 0 : -1;
}

/* --- app mode, under a real supervisor -------------------------------------- */

static volatile sig_atomic_t got_usr1, got_term;
static void on_sig(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_term = 1;
}

static int app(size_t size)
{
    double t0 = now();
    struct baton_state st;
    int r = baton_state_load(&st);
    if (r == 0) {
        volatile uint64_t sum = touch(st.data, st.len);
        (void)sum;
        fprintf(stderr, "state_bench app: generation %u loaded %zu bytes in %.1f ms\n",
                baton_generation(), st.len, (now() - t0) * 1e3);
        baton_state_release(&st);
    } else if (r != -ENOENT) {
        fprintf(stderr, "state_bench app: load: %s\n", strerror(-r));
        return 1;
    }
    signal(SIGUSR1, on_sig);
    signal(SIGTERM, on_sig);
    baton_notify("READY=1");
    while (!got_term) {
        pause();
        if (got_usr1) {
            got_usr1 = 0;
            double t1 = now();
            char *buf = malloc(size);
            if (!buf)
                return 1;
            memset(buf, 0x5a, size); /* the app's state, made in its own memory */
            double t2 = now();
            r = baton_state_save(buf, size, 1);
            fprintf(stderr,
                    "state_bench app: generation %u made %zu bytes in %.1f ms, "
                    "saved them in %.1f ms (%d)\n",
                    baton_generation(), size, (t2 - t1) * 1e3, (now() - t2) * 1e3, r);
            free(buf); /* the app keeps nothing: the memfd holds it */
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc == 3 && strcmp(argv[1], "--child-load") == 0)
        return child_load();
    if (argc == 3 && strcmp(argv[1], "--child-recv") == 0)
        return child_recv((size_t)strtoull(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "--app") == 0)
        return app(parse_size(argv[2]));

    const char *defaults[] = { "1M", "100M", "1G" };
    int nsizes = argc > 1 ? argc - 1 : 3;
    char dir[] = "/tmp/state-bench-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/notify", dir);
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
    if (sock < 0 || bind(sock, (struct sockaddr *)&un, sizeof un) < 0) {
        perror("state_bench: notify socket");
        return 1;
    }
    setenv("NOTIFY_SOCKET", path, 1);

    printf("%-6s %9s %9s %9s %11s %11s %7s\n", "size", "store_ms", "check_ms", "load_ms",
           "handover_ms", "socket_ms", "ratio");
    int rc = 0;
    for (int i = 0; i < nsizes; i++) {
        const char *label = argc > 1 ? argv[i + 1] : defaults[i];
        size_t len = parse_size(label);
        unsigned char *buf = len ? malloc(len) : NULL;
        if (!buf) {
            fprintf(stderr, "state_bench: bad size or out of memory: %s\n", label);
            return 2;
        }
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)(k * 131 + (k >> 12));
        struct handover_times best = { 1e9, 1e9, 1e9, 1e9 }, t;
        double copy_best = 1e9, copy;
        for (int round = 0; round < 3; round++) {
            if (handover(buf, len, path, sock, &t) < 0 || socket_copy(buf, len, &copy) < 0) {
                fprintf(stderr, "state_bench: round failed at %s\n", label);
                rc = 1;
                break;
            }
            if (t.total < best.total)
                best = t;
            if (copy < copy_best)
                copy_best = copy;
        }
        printf("%-6s %9.1f %9.1f %9.1f %11.1f %11.1f %7.2f\n", label, best.store * 1e3,
               best.check * 1e3, best.load * 1e3, best.total * 1e3, copy_best * 1e3,
               best.total / copy_best);
        fflush(stdout);
        free(buf);
    }
    close(sock);
    unlink(path);
    rmdir(dir);
    return rc;
}
