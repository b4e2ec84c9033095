/* conns_bench: what one conns_poll costs when a generation holds N
 * connections, against a baseline measured in the same run: one
 * getsockopt(TCP_INFO) per connection over the same N connections, what a
 * syscall-per-connection way would cost for the kernel side alone.
 *
 * Per N (0, 100, 1000, 5000, 10000): a TCP listener on loopback, a session child
 * (setsid, as spawn.c makes a generation) that accepts and holds N
 * connections, the bench holding the clients' ends. Prints, per N:
 *   poll_us      one conns_poll: the dump, the process walk, the fds
 *   per_conn_ns  poll_us / N
 *   kernel_us    one conns_poll without the generation: the dump alone
 *   baseline_us  N getsockopt(TCP_INFO)
 *   ratio        poll_us / baseline_us
 *   vs_none      poll_us / the poll's time with no connection (N = 0)
 *   procnet_us   one conns_poll the way it goes where sock_diag is refused
 *                (a seccomp profile, gVisor): /proc/net/tcp read whole
 *   procnet_ratio procnet_us / poll_us
 * and the lines of /proc/net/tcp at the time: what the /proc way pays for
 * is every TCP socket of the host, TIME_WAIT included.
 * Sizes the open-file limit cannot hold (its hard limit) are skipped.
 *
 *   conns_bench [POLLS]     (default 200 polls per measurement) */
#include "os/conns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What the baseline reads, kept so the compiler keeps the reads. */
static volatile unsigned long sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The generation: a session of its own that accepts N connections, says
 * so on READY, and keeps them until HOLD ends. */
static pid_t start_holder(int listener, int n, int ready, int hold)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (setsid() < 0)
        _exit(2);
    for (int i = 0; i < n; i++)
        if (accept(listener, NULL, NULL) < 0)
            _exit(3);
    char c = 1;
    if (write(ready, &c, 1) != 1)
        _exit(4);
    while (read(hold, &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
}

/* Lines of /proc/net/tcp now, its header included: the host's TCP sockets. */
static long tcp_lines(void)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    long lines = 0;
    int c;
    if (!f)
        return -1;
    while ((c = getc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

/* The poll's time with no connection open, measured first in the run. */
static double none_s;

static int run(int n, int polls)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, SOMAXCONN) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0) {
        perror("conns_bench: listener");
        return 1;
    }
    int ready[2], hold[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
        perror("conns_bench: pipe");
        return 1;
    }
    pid_t pid = start_holder(l, n, ready[1], hold[0]);
    if (pid < 0) {
        perror("conns_bench: fork");
        return 1;
    }
    close(ready[1]);
    close(hold[0]);

    int rc = 1;
    int *clients = malloc((size_t)n * sizeof *clients);
    int opened = 0;
    if (!clients)
        goto out;
    for (; opened < n; opened++) {
        clients[opened] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (clients[opened] < 0 || connect(clients[opened], (struct sockaddr *)&a, sizeof a) < 0) {
            perror("conns_bench: connect");
            if (clients[opened] >= 0)
                close(clients[opened]);
            goto out;
        }
    }
    struct pollfd pfd = { .fd = ready[0], .events = POLLIN };
    char c;
    if (poll(&pfd, 1, 30000) != 1 || read(ready[0], &c, 1) != 1) {
        fprintf(stderr, "conns_bench: the holder did not accept %d connections\n", n);
        goto out;
    }

    struct conns_listener ls = { .fd = l };
    struct conns_gen g = { .pid = pid };
    int r = conns_poll(&ls, 1, &g, 1);
    if (r < 0 || g.established != (unsigned)n)
        fprintf(stderr, "conns_bench: n=%d: poll %d, established %u: figures below are off\n", n, r,
                g.established);

    conns_set_sock_diag(1);
    double t0 = now();
    for (int i = 0; i < polls; i++)
        conns_poll(&ls, 1, &g, 1);
    double poll_s = (now() - t0) / polls;

    /* The /proc way, over the same connections, in the same run. */
    conns_set_sock_diag(0);
    r = conns_poll(&ls, 1, &g, 1);
    if (r < 0 || g.established != (unsigned)n)
        fprintf(stderr, "conns_bench: n=%d: /proc poll %d, established %u: figures below are off\n",
                n, r, g.established);
    t0 = now();
    for (int i = 0; i < polls; i++)
        conns_poll(&ls, 1, &g, 1);
    double procnet_s = (now() - t0) / polls;
    conns_set_sock_diag(1);

    t0 = now();
    for (int i = 0; i < polls; i++)
        conns_poll(&ls, 1, NULL, 0);
    double kernel_s = (now() - t0) / polls;

    struct tcp_info info;
    t0 = now();
    for (int i = 0; i < polls; i++)
        for (int k = 0; k < n; k++) {
            socklen_t il = sizeof info;
            if (getsockopt(clients[k], IPPROTO_TCP, TCP_INFO, &info, &il) == 0)
                sink += info.tcpi_state;
        }
    double base_s = (now() - t0) / polls;

    if (n == 0)
        none_s = poll_s;
    printf("conns_bench: n=%d poll_us=%.1f per_conn_ns=%.0f kernel_us=%.1f baseline_us=%.1f "
           "ratio=%.2f vs_none=%.1f procnet_us=%.1f procnet_ratio=%.2f (nprocs=%u "
           "established=%u, %d polls, %ld lines in /proc/net/tcp)\n",
           n, poll_s * 1e6, n ? poll_s * 1e9 / n : 0, kernel_s * 1e6, base_s * 1e6,
           base_s > 0 ? poll_s / base_s : 0, none_s > 0 ? poll_s / none_s : 0, procnet_s * 1e6,
           poll_s > 0 ? procnet_s / poll_s : 0, g.nprocs, g.established, polls, tcp_lines());
    rc = 0;
out:
    close(hold[1]); /* the holder's end of the wait */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(ready[0]);
    for (int i = 0; i < opened; i++)
        close(clients[i]);
    free(clients);
    close(l);
    return rc;
}

int main(int argc, char **argv)
{
    int polls = argc > 1 ? atoi(argv[1]) : 200;
    if (polls <= 0)
        polls = 200;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        perror("conns_bench: raising the open-file limit");
    getrlimit(RLIMIT_NOFILE, &rl);
    const int sizes[] = { 0, 100, 1000, 5000, 10000 };
    int rc = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* Each side holds N sockets and a few more. */
        if (rl.rlim_cur < (rlim_t)sizes[i] + 64) {
            printf("conns_bench: n=%d skipped: the open-file limit is %llu\n", sizes[i],
                   (unsigned long long)rl.rlim_cur);
            continue;
        }
        rc |= run(sizes[i], polls);
    }
    return rc;
}
