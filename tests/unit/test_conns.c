/* conns.c: real listeners, real sessions of processes, all on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "os/conns.h"
#include "os/portholder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every process a test started: killed and reaped by pid in teardown,
 * whatever assertion failed. The test binary is a child subreaper (main),
 * as the supervisor is, so a grandchild whose parent died is ours to reap. */
static pid_t kids[8], grandkids[8];
static size_t nkids, ngrandkids;
/* Every test runs twice: as the kernel gives (sock_diag, or /proc/net
 * where it is refused: run under tests/kernel/oldkernel nosockdiag too),
 * then with /proc/net forced. */
static int procnet;

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nkids; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    for (size_t i = 0; i < ngrandkids; i++) {
        kill(grandkids[i], SIGKILL);
        waitpid(grandkids[i], NULL, 0); /* ours once its parent is gone */
    }
    nkids = ngrandkids = 0;
    conns_set_children_files(-1);
    return 0;
}

/* Polls until COND holds, for at most 2 s: the kernel finishes a handshake
 * or a close in its own time, after the syscall that started it returned. */
#define POLL_UNTIL(ls, nls, gs, ngs, cond)                     \
    do {                                                       \
        for (int try_ = 0; try_ < 200; try_++) {               \
            assert_int_equal(conns_poll(ls, nls, gs, ngs), 0); \
            if (cond)                                          \
                break;                                         \
            usleep(10000);                                     \
        }                                                      \
    } while (0)

/* A listener on the loopback address of FAMILY, port chosen by the kernel;
 * -1 when the family is not there (no IPv6). */
static int tcp_listener(int family, int backlog, struct sockaddr_storage *addr, socklen_t *len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        *len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)addr, *len) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)addr, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(int family, const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)addr, len), 0);
    return fd;
}

static uint16_t port_of(int fd, int peer)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len) < 0)
        return 0;
    if (a.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&a)->sin_port);
    if (a.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return 0;
}

/* What a process of a generation tells the test once it holds its
 * connections: its pid and its clients' ports (0 for unix). */
struct report {
    pid_t pid;
    int n;
    uint16_t ports[8];
};

static void wait_hold(int hold)
{
    char c;
    while (read(hold, &c, 1) < 0 && errno == EINTR) {
    }
}

/* A generation's main process, as spawn.c makes one: a session of its own;
 * and a name with spaces and ')' in it, which /proc/PID/stat shows as is.
 * Accepts NACCEPT connections of each of LISTENERS and keeps them; with
 * GRAND, forks a second
 * process of the session that accepts one more (and keeps the first's,
 * inherited). Each reports once it holds its connections, then waits for
 * the end of HOLD or SIGKILL. In the child: no cmocka, exit codes only. */
/* When set, start_gen's main process closes the listeners once it has
 * accepted its connections, as an app that stops accepting does. */
static int stop_accepting;

static pid_t start_gen(const int *listeners, size_t nlisteners, int naccept, int grand,
                       const int *clients, size_t nclients, int report[2], int hold[2])
{
    assert_int_equal(pipe2(report, O_CLOEXEC), 0);
    assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(report[0]);
        close(hold[1]);
        /* The test's ends of the connections: closing them there must close them. */
        for (size_t i = 0; i < nclients; i++)
            close(clients[i]);
        if (setsid() < 0 || prctl(PR_SET_NAME, "w) 1 2 (x") < 0)
            _exit(2);
        struct report r = { .pid = getpid() };
        for (size_t k = 0; k < nlisteners; k++)
            for (int i = 0; i < naccept; i++) {
                int fd = accept(listeners[k], NULL, NULL);
                if (fd < 0 || r.n == 8)
                    _exit(3);
                r.ports[r.n++] = port_of(fd, 1);
            }
        if (stop_accepting)
            for (size_t k = 0; k < nlisteners; k++)
                close(listeners[k]);
        if (write(report[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(4);
        if (grand) {
            pid_t g = fork();
            if (g < 0)
                _exit(5);
            if (g == 0) {
                struct report gr = { .pid = getpid() };
                int fd = accept(listeners[0], NULL, NULL);
                if (fd < 0)
                    _exit(6);
                gr.ports[gr.n++] = port_of(fd, 1);
                if (write(report[1], &gr, sizeof gr) != (ssize_t)sizeof gr)
                    _exit(7);
                wait_hold(hold[0]);
                _exit(0);
            }
        }
        wait_hold(hold[0]);
        _exit(0);
    }
    kids[nkids++] = pid;
    close(report[1]);
    close(hold[0]);
    return pid;
}

static void read_report(int fd, struct report *r)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(read(fd, r, sizeof *r), (ssize_t)sizeof *r);
}

/* A generation that closed its listener (it stopped accepting) holds none:
 * only then may a drain end on its connection count. */
static void stopped_accepting(void **state)
{
    (void)state;
    struct sockaddr_storage addr;
    socklen_t len;
    int l = tcp_listener(AF_INET, 16, &addr, &len);
    assert_true(l >= 0);
    int clients[2], report[2], hold[2];
    for (int i = 0; i < 2; i++)
        clients[i] = connect_to(AF_INET, &addr, len);
    stop_accepting = 1;
    pid_t pid = start_gen(&l, 1, 2, 0, clients, 2, report, hold);
    stop_accepting = 0;
    struct report r;
    read_report(report[0], &r);
    struct conns_listener ls = { .fd = l };
    struct conns_gen g = { .pid = pid };
    POLL_UNTIL(&ls, 1, &g, 1, g.established == 2);
    assert_int_equal(g.established, 2);
    assert_int_equal(g.listening, 0);
    close(hold[1]);
    close(report[0]);
    for (int i = 0; i < 2; i++)
        close(clients[i]);
    close(l);
}

static void tcp_queue_and_backlog(void **state)
{
    (void)state;
    struct sockaddr_storage addr;
    socklen_t len;
    int l = tcp_listener(AF_INET, 16, &addr, &len);
    assert_true(l >= 0);
    int clients[5];
    for (int i = 0; i < 5; i++)
        clients[i] = connect_to(AF_INET, &addr, len);
    struct conns_listener ls = { .fd = l };
    POLL_UNTIL(&ls, 1, NULL, 0, ls.queue == 5);
    assert_int_equal(ls.queue, 5);
    assert_int_equal(ls.max_queue, 16);
    for (int i = 0; i < 5; i++)
        close(clients[i]);
    close(l);
}

static void not_stream_listeners_read_as_nothing(void **state)
{
    (void)state;
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof a), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    struct conns_listener ls[2] = { { .fd = u, .queue = 7 }, { .fd = p[0], .queue = 7 } };
    assert_int_equal(conns_poll(ls, 1, NULL, 0), 0);
    assert_int_equal(ls[0].queue, 0);
    assert_int_equal(conns_poll(ls, 2, NULL, 0), -ENOTSOCK);
    assert_int_equal(ls[1].queue, 0);
    close(u);
    close(p[0]);
    close(p[1]);
}

/* Tests (2) and (3): a session holding 3 of 5 connections; then the test
 * closes its ends of 2 of those. */
static int by_ino32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void session_holds_connections(int family)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int l = tcp_listener(family, 16, &addr, &len);
    if (l < 0 && family == AF_INET6)
        skip(); /* no IPv6 on this host */
    assert_true(l >= 0);
    int clients[5], report[2], hold[2];
    for (int i = 0; i < 5; i++)
        clients[i] = connect_to(family, &addr, len);
    pid_t pid = start_gen(&l, 1, 3, 0, clients, 5, report, hold);
    struct report r;
    read_report(report[0], &r);
    assert_int_equal(r.pid, pid);
    assert_int_equal(r.n, 3);

    /* The second generation: the test process, which leads no session:
     * no process is in the session of its pid. */
    struct conns_listener ls = { .fd = l };
    uint32_t inos[8];
    struct conns_gen gs[2] = { { .pid = pid, .inos = inos, .max_inos = 8 }, { .pid = getpid() } };
    POLL_UNTIL(&ls, 1, gs, 2, gs[0].established == 3 && ls.queue == 2);
    /* The inodes of its 3 connections, and its fds hold each of them
     * (conns_held: what a quiet drain reads in place of the table). */
    assert_int_equal(gs[0].ninos, 3);
    qsort(inos, 3, sizeof *inos, by_ino32);
    unsigned held = 0;
    assert_int_equal(conns_held(&pid, 1, inos, 3, &held), 0);
    assert_int_equal(held, 3);
    assert_int_equal(conns_held(&pid, 1, inos, 1, &held), 0);
    assert_int_equal(held, 1);
    assert_int_equal(gs[0].established, 3);
    assert_int_equal(gs[0].closing, 0);
    assert_int_equal(gs[0].nprocs, 1);
    assert_int_equal(gs[0].listening, 1); /* it inherited the listener: it may accept */
    assert_true(gs[0].rss_bytes > 0);
    assert_true(gs[0].cpu_seconds >= 0);
    assert_int_equal(ls.queue, 2); /* the 2 not accepted: no process's */
    assert_int_equal(ls.max_queue, 16);
    assert_int_equal(gs[1].nprocs, 0);
    assert_int_equal(gs[1].established, 0);

    /* Our ends of 2 accepted connections closed: the kernel sends a FIN,
     * the app's ends go to CLOSE_WAIT (the app has not closed them). */
    int closed = 0;
    for (int i = 0; i < 5 && closed < 2; i++)
        for (int k = 0; k < r.n; k++)
            if (clients[i] >= 0 && port_of(clients[i], 0) == r.ports[k]) {
                close(clients[i]);
                clients[i] = -1;
                closed++;
                break;
            }
    assert_int_equal(closed, 2);
    POLL_UNTIL(&ls, 1, gs, 1, gs[0].closing == 2);
    assert_int_equal(gs[0].closing, 2);
    assert_int_equal(gs[0].established, 1);
    assert_int_equal(gs[0].nprocs, 1);

    close(hold[1]);
    close(report[0]);
    for (int i = 0; i < 5; i++)
        if (clients[i] >= 0)
            close(clients[i]);
    close(l);
}

static void session_connections_v4(void **state)
{
    (void)state;
    session_holds_connections(AF_INET);
}

static void session_connections_v6(void **state)
{
    (void)state;
    session_holds_connections(AF_INET6);
}

static void unix_session_and_queue(void **state)
{
    (void)state;
    char dir[] = "/tmp/baton-conns-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s/l.sock", dir);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 8), 0);
    int clients[3], report[2], hold[2];
    for (int i = 0; i < 3; i++) {
        clients[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(clients[i], (struct sockaddr *)&a, sizeof a), 0);
    }
    pid_t pid = start_gen(&l, 1, 2, 0, clients, 3, report, hold);
    struct report r;
    read_report(report[0], &r);

    struct conns_listener ls = { .fd = l };
    struct conns_gen g = { .pid = pid };
    POLL_UNTIL(&ls, 1, &g, 1, g.established == 2 && (procnet || ls.queue == 1));
    assert_int_equal(g.established, 2);
    assert_int_equal(g.closing, 0);
    assert_int_equal(g.nprocs, 1);
    if (procnet) {
        /* /proc/net/unix has no queue and no shutdown: lost (conns.h). */
        assert_int_equal(ls.queue, 0);
        assert_int_equal(ls.max_queue, 0);
        close(clients[0]);
        usleep(50000);
        assert_int_equal(conns_poll(&ls, 1, &g, 1), 0);
        assert_int_equal(g.established, 2);
        assert_int_equal(g.closing, 0);
        goto out;
    }
    assert_int_equal(ls.queue, 1);
    assert_int_equal(ls.max_queue, 8);

    /* A unix socket accepts in the order of connect(): clients[0] is one
     * the app holds. Closed, the app's end is shut down: closing. */
    close(clients[0]);
    POLL_UNTIL(&ls, 1, &g, 1, g.closing == 1);
    assert_int_equal(g.closing, 1);
    assert_int_equal(g.established, 1);

out:
    close(hold[1]);
    close(report[0]);
    close(clients[1]);
    close(clients[2]);
    close(l);
    unlink(a.sun_path);
    rmdir(dir);
}

/* Several ports in one filter (the kernel's OR of them), and a connection
 * the generation holds on a port no listener of the poll has: not counted. */
static void counts_only_the_listeners_ports(void **state)
{
    (void)state;
    struct sockaddr_storage addr[3];
    socklen_t len[3];
    int l[3], clients[3], report[2], hold[2];
    for (int i = 0; i < 3; i++) {
        l[i] = tcp_listener(AF_INET, 16, &addr[i], &len[i]);
        assert_true(l[i] >= 0);
        clients[i] = connect_to(AF_INET, &addr[i], len[i]);
    }
    start_gen(l, 3, 1, 0, clients, 3, report, hold);
    struct report r;
    read_report(report[0], &r);
    struct conns_gen g = { .pid = r.pid };
    struct conns_listener ls[3] = { { .fd = l[0] }, { .fd = l[1] }, { .fd = l[2] } };
    POLL_UNTIL(ls, 2, &g, 1, g.established == 2);
    assert_int_equal(g.established, 2);
    POLL_UNTIL(ls, 3, &g, 1, g.established == 3);
    assert_int_equal(g.established, 3);
    POLL_UNTIL(ls + 1, 1, &g, 1, g.established == 1);
    assert_int_equal(g.established, 1);
    assert_int_equal(g.nprocs, 1);
    close(hold[1]);
    close(report[0]);
    for (int i = 0; i < 3; i++) {
        close(clients[i]);
        close(l[i]);
    }
}

static void grandchild_counts_and_orphan_stays(void **state)
{
    (void)state;
    struct sockaddr_storage addr;
    socklen_t len;
    int l = tcp_listener(AF_INET, 16, &addr, &len);
    assert_true(l >= 0);
    int clients[5], report[2], hold[2];
    for (int i = 0; i < 5; i++)
        clients[i] = connect_to(AF_INET, &addr, len);
    pid_t pid = start_gen(&l, 1, 3, 1, clients, 5, report, hold);
    struct report r, gr;
    read_report(report[0], &r);
    read_report(report[0], &gr);
    if (gr.pid == pid) { /* in either order */
        struct report t = r;
        r = gr;
        gr = t;
    }
    assert_int_equal(r.pid, pid);
    grandkids[ngrandkids++] = gr.pid;

    /* The grandchild holds the 3 its parent accepted (inherited) and its
     * own: 4 connections, each counted once for the generation. */
    struct conns_listener ls = { .fd = l };
    struct conns_gen g = { .pid = pid };
    POLL_UNTIL(&ls, 1, &g, 1, g.nprocs == 2 && g.established == 4);
    assert_int_equal(g.nprocs, 2);
    assert_int_equal(g.established, 4);
    assert_int_equal(ls.queue, 1);

    /* The main process dies: its child is orphaned, adopted by the test
     * (a subreaper, as the supervisor is), and still of the session. */
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    nkids = 0;
    kids[nkids++] = gr.pid; /* now our child */
    POLL_UNTIL(&ls, 1, &g, 1, g.nprocs == 1 && g.established == 4);
    assert_int_equal(g.nprocs, 1);
    assert_int_equal(g.established, 4);

    close(hold[1]);
    close(report[0]);
    for (int i = 0; i < 5; i++)
        close(clients[i]);
    close(l);
}

/* The same, found by a scan of /proc as on a kernel without children files. */
static void grandchild_counts_by_proc_scan(void **state)
{
    conns_set_children_files(0); /* back to -1 in teardown */
    grandchild_counts_and_orphan_stays(state);
}

/* What a quiet drain polls between full reads: a generation's processes
 * (conns_members) and their open fds, counted (conns_fds): 4 fewer once
 * its process closed 4, and -ESRCH once it is gone. */
static void counts_a_generations_fds(void **state)
{
    (void)state;
    int report[2], step[2];
    assert_int_equal(pipe2(report, O_CLOEXEC), 0);
    assert_int_equal(pipe2(step, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* a generation's main process, holding 4 more fds */
        int fds[2][2];
        if (setsid() < 0 || pipe(fds[0]) < 0 || pipe(fds[1]) < 0)
            _exit(2);
        char c = 1;
        if (write(report[1], &c, 1) != 1 || read(step[0], &c, 1) != 1)
            _exit(3);
        for (int i = 0; i < 2; i++)
            close(fds[i][0]), close(fds[i][1]);
        if (write(report[1], &c, 1) != 1 || read(step[0], &c, 1) != 1)
            _exit(4);
        _exit(0);
    }
    kids[nkids++] = pid;
    char c;
    struct pollfd pfd = { .fd = report[0], .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(read(report[0], &c, 1), 1);
    pid_t pids[4];
    size_t n = 0;
    assert_int_equal(conns_members(pid, pids, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pids[0], pid);
    uint64_t before, after;
    int r = conns_fds(pids, n, &before);
    if (r == -EOPNOTSUPP)
        skip(); /* a kernel before 6.2 does not count: drains read in full */
    assert_int_equal(r, 0);
    assert_true(before >= 8); /* stdio, 4 of its pipes, 4 of ours it inherited */
    assert_int_equal(write(step[1], "x", 1), 1);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(read(report[0], &c, 1), 1);
    assert_int_equal(conns_fds(pids, n, &after), 0);
    assert_int_equal(after, before - 4);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    nkids--;
    assert_int_equal(conns_fds(pids, n, &after), -ESRCH);
    close(report[0]);
    close(report[1]);
    close(step[0]);
    close(step[1]);
}

static void listen_overflows_read(void **state)
{
    (void)state;
    assert_true(conns_listen_overflows() >= 0);
}

/* The listener on a port, found by sock_diag; and who holds it
 * (portholder.c, which asks the same dump). */
static void finds_the_listener_of_a_port(void **state)
{
    (void)state;
    struct sockaddr_storage a;
    socklen_t len;
    int fd = tcp_listener(AF_INET, 4, &a, &len);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint16_t port = port_of(fd, 0);
    uint64_t ino = 0;
    assert_int_equal(conns_tcp_listener(AF_INET, port, &ino), 0);
    assert_int_equal(ino, (uint64_t)st.st_ino);
    pid_t pid = 0;
    char comm[64];
    assert_int_equal(port_holder((struct sockaddr *)&a, &pid, comm, sizeof comm), 0);
    assert_int_equal(pid, getpid());
    assert_string_equal(comm, "test_conns");
    close(fd);
    /* Closed: nobody listens there now. */
    assert_int_equal(conns_tcp_listener(AF_INET, port, &ino), -ENOENT);
    assert_int_equal(port_holder((struct sockaddr *)&a, &pid, comm, sizeof comm), -ENOENT);
}

static int as_the_kernel_gives(void **state)
{
    (void)state;
    /* Refused here (oldkernel nosockdiag): conns.c takes /proc/net itself. */
    procnet = conns_sock_diag_probe() != 0;
    conns_set_sock_diag(-1);
    return 0;
}

static int by_proc_net(void **state)
{
    (void)state;
    procnet = 1;
    conns_set_sock_diag(0);
    return 0;
}

int main(void)
{
    /* As the supervisor: orphans of a session become ours. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(tcp_queue_and_backlog, teardown),
        cmocka_unit_test_teardown(stopped_accepting, teardown),
        cmocka_unit_test_teardown(not_stream_listeners_read_as_nothing, teardown),
        cmocka_unit_test_teardown(session_connections_v4, teardown),
        cmocka_unit_test_teardown(session_connections_v6, teardown),
        cmocka_unit_test_teardown(unix_session_and_queue, teardown),
        cmocka_unit_test_teardown(counts_only_the_listeners_ports, teardown),
        cmocka_unit_test_teardown(grandchild_counts_and_orphan_stays, teardown),
        cmocka_unit_test_teardown(grandchild_counts_by_proc_scan, teardown),
        cmocka_unit_test_teardown(counts_a_generations_fds, teardown),
        cmocka_unit_test_teardown(listen_overflows_read, teardown),
        cmocka_unit_test_teardown(finds_the_listener_of_a_port, teardown),
    };
    int failed = cmocka_run_group_tests_name("as the kernel gives", tests, as_the_kernel_gives,
                                             NULL);
    return failed + cmocka_run_group_tests_name("by /proc/net", tests, by_proc_net, NULL);
}
