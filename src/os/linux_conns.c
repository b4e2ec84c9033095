/* linux_conns.c: generations' connections, queues and processes on Linux (see conns.h). */
#include "os/conns.h"
#include "os/conns_poll.h"

#include "base/log.h"
#include "os/os.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* A children file holds "PID " per child: 8 bytes each for 7-digit pids. */
#define CHILDREN_BUF (CONNS_MAX_PROCS * 8)

static long clk_tck, page_size;
static int children_files = -1; /* CONFIG_PROC_CHILDREN: 1, 0, or -1 unknown yet */
static int sock_diag = -1;      /* 1 use it, 0 read /proc/net instead, -1 try it */
static int warned_sockets, warned_procs;

/* -- /proc files ------------------------------------------------------- */

/* Reads PATH whole (up to LEN - 1 bytes) into BUF, NUL-terminated. Returns
 * the length or a negative errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got < len - 1) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* -- the table of connections ----------------------------------------- */

int conns__table_add(struct poll *p, uint32_t ino, int closing)
{
    struct table *t = &p->t;
    if (t->len == CONNS_MAX_SOCKETS) {
        if (!warned_sockets)
            log_warn("conns: more than %d connections on the listeners: figures cut there",
                     CONNS_MAX_SOCKETS);
        warned_sockets = 1;
        p->cut = 1;
        return -ENOBUFS;
    }
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        if (cap > CONNS_MAX_SOCKETS)
            cap = CONNS_MAX_SOCKETS;
        struct sockent *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->len++] = (struct sockent){ .ino = ino, .closing = (uint8_t)(closing != 0) };
    return 0;
}

static int by_ino(const void *a, const void *b)
{
    uint32_t x = ((const struct sockent *)a)->ino, y = ((const struct sockent *)b)->ino;
    return (x > y) - (x < y);
}

static struct sockent *table_find(struct table *t, uint32_t ino)
{
    struct sockent key = { .ino = ino };
    return bsearch(&key, t->v, t->len, sizeof *t->v, by_ino);
}

/* -- listeners --------------------------------------------------------- */

static int listener_read(int fd, struct lsn *l)
{
    struct stat st;
    struct sockaddr_storage ss;
    int family, type, proto;
    socklen_t len;
    memset(l, 0, sizeof *l);
    if (fd < 0)
        return 0; /* none here (a per_generation listener): nothing to read */
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    len = sizeof family;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
        return -errno;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    len = sizeof proto;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
        return -errno;
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (family == AF_INET || family == AF_INET6) {
        if (type != SOCK_STREAM || proto != IPPROTO_TCP)
            return 0; /* UDP (no queue, no connections), SCTP: not ours to read */
        if (family == AF_INET) {
            struct sockaddr_in sin;
            memcpy(&sin, &ss, sizeof sin);
            l->port = ntohs(sin.sin_port);
        } else {
            struct sockaddr_in6 sin6;
            memcpy(&sin6, &ss, sizeof sin6);
            l->port = ntohs(sin6.sin6_port);
        }
    } else if (family == AF_UNIX) {
        if (type != SOCK_STREAM && type != SOCK_SEQPACKET)
            return 0;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        memcpy(&l->un, &ss, len < sizeof l->un ? len : sizeof l->un);
        l->namelen = len > off ? len - off : 0;
        if (l->namelen > sizeof l->un.sun_path)
            l->namelen = sizeof l->un.sun_path;
    } else {
        return 0;
    }
    l->ino = (uint64_t)st.st_ino;
    l->family = family;
    l->type = type;
    return 0;
}

static int by_lsn_ino(const void *a, const void *b)
{
    const struct lsn_at *x = a, *y = b;
    if (x->ino != y->ino)
        return (x->ino > y->ino) - (x->ino < y->ino);
    return (x->i > y->i) - (x->i < y->i);
}

/* P's listeners sorted by inode, those read (an inode not 0). 0 or -ENOMEM. */
static int index_listeners(struct poll *p)
{
    p->nbyino = 0;
    p->byino = p->nls ? malloc(p->nls * sizeof *p->byino) : NULL;
    if (p->nls && !p->byino)
        return -ENOMEM;
    memset(p->ports, 0, sizeof p->ports);
    for (size_t i = 0; i < p->nls; i++) {
        const struct lsn *l = &p->info[i];
        if (l->family == AF_INET || l->family == AF_INET6)
            p->ports[l->family == AF_INET6][l->port / 8] |= (uint8_t)(1u << (l->port % 8));
        if (l->ino && l->family)
            p->byino[p->nbyino++] = (struct lsn_at){ .ino = l->ino, .i = i };
    }
    if (p->nbyino > 1)
        qsort(p->byino, p->nbyino, sizeof *p->byino, by_lsn_ino);
    return 0;
}

/* The first of P's listeners whose inode is INO, as an index into
 * P->byino (the others follow it), or P->nbyino when none is. */
static size_t listener_first(const struct poll *p, uint64_t ino)
{
    size_t lo = 0, hi = p->nbyino;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->byino[mid].ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->nbyino && p->byino[lo].ino == ino ? lo : p->nbyino;
}

int conns__port_ours(const struct poll *p, int family, uint16_t port)
{
    if (family != AF_INET && family != AF_INET6)
        return 0;
    return (p->ports[family == AF_INET6][port / 8] >> (port % 8)) & 1;
}

/* A listening socket of the dump: if it is one of ours, its queue. */
void conns__listener_queue(struct poll *p, uint32_t ino, unsigned queue, unsigned max)
{
    for (size_t k = listener_first(p, ino); k < p->nbyino && p->byino[k].ino == ino; k++) {
        p->ls[p->byino[k].i].queue = queue;
        p->ls[p->byino[k].i].max_queue = max;
    }
}

/* Unix names: a path compares up to its NUL (the kernel may or may not
 * count one), an abstract name (leading NUL) byte for byte. */

/* -- processes --------------------------------------------------------- */

/* PID joins generation GI when its session is the generation's; its CPU
 * and memory are added. Returns 1 when it joined, 0 when not, or -ENOBUFS
 * / -ENOMEM. */
static int member_add(struct poll *p, size_t gi, pid_t pid)
{
    struct conns_gen *g = &p->gs[gi];
    struct os_proc_stat f;
    if (os_proc_stat(pid, &f) < 0 || f.session != g->pid)
        return 0; /* gone, or not of this session */
    if (g->nprocs == CONNS_MAX_PROCS) {
        if (!warned_procs)
            log_warn("conns: generation of pid %d has more than %d processes: figures cut there",
                     (int)g->pid, CONNS_MAX_PROCS);
        warned_procs = 1;
        p->cut = 1;
        return -ENOBUFS;
    }
    if (p->mlen == p->mcap) {
        size_t cap = p->mcap ? p->mcap * 2 : 64;
        struct member *m = realloc(p->m, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        p->m = m;
        p->mcap = cap;
    }
    p->m[p->mlen++] = (struct member){ .gen = gi, .pid = pid, .threads = f.threads };
    g->nprocs++;
    g->cpu_seconds += (double)(f.utime + f.stime) / (double)clk_tck;
    g->rss_bytes += (uint64_t)(f.rss_pages > 0 ? f.rss_pages : 0) * (uint64_t)page_size;
    return 1;
}

/* Calls FN for each pid of the children file PATH. Returns 0, FN's error,
 * or a negative errno for the file. */
static int children_each(struct poll *p, const char *path, size_t gi,
                         int (*fn)(struct poll *p, size_t gi, pid_t pid))
{
    ssize_t n = read_small(path, p->children, CHILDREN_BUF);
    if (n < 0)
        return (int)n;
    if (n == CHILDREN_BUF - 1) { /* cut: the last pid may be cut too */
        char *last = strrchr(p->children, ' ');
        *(last ? last : p->children) = '\0';
    }
    char *s = p->children, *end;
    for (;;) {
        long pid = strtol(s, &end, 10);
        if (end == s)
            return 0;
        s = end;
        int r = fn(p, gi, (pid_t)pid);
        if (r < 0)
            return r;
    }
}

/* A process's children are listed per thread: the thread that forked. */
static int children_add(struct poll *p, size_t gi, pid_t pid, long threads)
{
    char path[96];
    if (threads <= 1) {
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
        int r = children_each(p, path, gi, member_add);
        return r == -ENOBUFS || r == -ENOMEM ? r : 0;
    }
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0; /* gone */
    const struct dirent *e;
    int r = 0;
    /* readdir on a DIR of our own is thread-safe; readdir_r is deprecated. */
    // cppcheck-suppress readdirCalled
    while (r >= 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/children", (int)pid, e->d_name);
        r = children_each(p, path, gi, member_add);
        if (r != -ENOBUFS && r != -ENOMEM)
            r = 0;
    }
    closedir(d);
    return r;
}

/* One of the caller's own children: kept unless it is a generation's main
 * process (each is its own generation's root). */
static int adopt_pid(struct poll *p, size_t gi, pid_t pid)
{
    (void)gi;
    for (size_t j = 0; j < p->ngs; j++)
        if (p->gs[j].pid == pid)
            return 0;
    if (p->nadopted == CONNS_MAX_PROCS)
        return 0;
    if (!p->adopted && !(p->adopted = malloc(CONNS_MAX_PROCS * sizeof *p->adopted)))
        return -ENOMEM;
    p->adopted[p->nadopted++] = pid;
    return 0;
}

/* The caller's own children: when it is a child subreaper, among them the
 * orphans of every session, which no walk from a main process reaches.
 * Read before the walks: a process only ever moves to us, never away from
 * us, so none is seen twice. */
static int read_adopted(struct poll *p)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)getpid());
    DIR *d = opendir(path);
    if (!d)
        return 0;
    const struct dirent *e;
    int r = 0;
    // cppcheck-suppress readdirCalled
    while (r >= 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/children", (int)getpid(), e->d_name);
        r = children_each(p, path, 0, adopt_pid);
        if (r != -ENOMEM)
            r = 0;
    }
    closedir(d);
    return r;
}

/* Each generation's session, walked down the process tree. */
static int walk_tree(struct poll *p)
{
    int err = read_adopted(p);
    for (size_t gi = 0; gi < p->ngs; gi++) {
        size_t start = p->mlen;
        int r = member_add(p, gi, p->gs[gi].pid);
        for (size_t k = 0; r >= 0 && k < p->nadopted; k++)
            r = member_add(p, gi, p->adopted[k]);
        for (size_t i = start; r >= 0 && i < p->mlen; i++)
            r = children_add(p, gi, p->m[i].pid, p->m[i].threads);
        if (r == -ENOMEM) {
            err = r;
            break;
        }
    }
    return err;
}

static int by_gen(const void *a, const void *b)
{
    size_t x = ((const struct member *)a)->gen, y = ((const struct member *)b)->gen;
    return (x > y) - (x < y);
}

/* Without children files: every process of /proc, once for all sessions. */
static int scan_proc(struct poll *p)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    const struct dirent *e;
    int err = 0;
    // cppcheck-suppress readdirCalled
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end)
            continue;
        struct os_proc_stat f;
        if (os_proc_stat((pid_t)pid, &f) < 0)
            continue;
        for (size_t gi = 0; gi < p->ngs; gi++)
            if (p->gs[gi].pid == f.session) {
                /* Reads its stat again: a fallback, kept simple. */
                int r = member_add(p, gi, (pid_t)pid);
                if (r == -ENOMEM)
                    err = r;
                break;
            }
        if (err)
            break;
    }
    closedir(d);
    /* Generation by generation, for the once-per-generation count. */
    if (p->mlen)
        qsort(p->m, p->mlen, sizeof *p->m, by_gen);
    return err;
}

/* PID's fds that are connections of the table count toward G (mark MARK). */
static void count_fds(struct poll *p, pid_t pid, struct conns_gen *g, uint32_t mark)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return; /* EACCES: counted in nprocs without its connections; or gone */
    const struct dirent *e;
    // cppcheck-suppress readdirCalled
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (n < 10 || memcmp(link, "socket:[", 8) != 0)
            continue;
        link[n] = '\0';
        unsigned long ino = strtoul(link + 8, NULL, 10);
        for (size_t k = listener_first(p, ino); k < p->nbyino && p->byino[k].ino == ino; k++) {
            size_t i = p->byino[k].i;
            if (p->held[i] != mark) {
                p->held[i] = mark; /* each listener once per generation */
                g->listening++;
            }
        }
        struct sockent *s = p->t.len ? table_find(&p->t, (uint32_t)ino) : NULL;
        if (!s || s->seen == mark)
            continue;
        s->seen = mark;
        if (s->closing)
            g->closing++;
        else
            g->established++;
        if (g->inos && g->ninos < g->max_inos)
            g->inos[g->ninos] = (uint32_t)ino;
        g->ninos++;
    }
    closedir(d);
}

/* -- the poll ---------------------------------------------------------- */

static void keep_first(int *err, int r)
{
    if (r < 0 && !*err)
        *err = r;
}

/* What a kernel or a sandbox answers when it will not do sock_diag. */
static int diag_refused(int err)
{
    return err == -EPERM || err == -EACCES || err == -EPROTONOSUPPORT || err == -EAFNOSUPPORT ||
           err == -ENOSYS || err == -EOPNOTSUPP;
}

static void diag_off(int err)
{
    log_info("conns: netlink sock_diag refused (%s): reading /proc/net/tcp, tcp6 and unix",
             strerror(-err));
    sock_diag = 0;
}

/* The connections on the listeners and their queues, into P, by
 * sock_diag. Where it is refused, says so, turns it off for good and
 * leaves P as it was: the caller reads /proc/net instead. */
static int read_diag(struct poll *p)
{
    int err = 0, refused = 0;
    int r[3] = { conns__dump_tcp(p, AF_INET), conns__dump_tcp(p, AF_INET6), conns__dump_unix(p) };
    for (int i = 0; i < 3; i++) {
        if (diag_refused(r[i]))
            refused = r[i];
        keep_first(&err, r[i]);
    }
    if (!refused) {
        if (!err)
            sock_diag = 1;
        return err;
    }
    diag_off(refused);
    p->t.len = 0; /* what a dump read before another was refused */
    for (size_t i = 0; i < p->nls; i++)
        p->ls[i].queue = p->ls[i].max_queue = 0;
    return 0;
}

/* Whether a process of the poll holds a socket that is not one of the
 * listeners (or may: one whose fds cannot be read). */
static int others_held(const struct poll *p)
{
    char path[64], link[64];
    for (size_t k = 0; k < p->mlen; k++) {
        snprintf(path, sizeof path, "/proc/%d/fd", (int)p->m[k].pid);
        DIR *d = opendir(path);
        if (!d) {
            if (errno == ENOENT)
                continue; /* gone */
            return 1;
        }
        const struct dirent *e;
        int other = 0;
        // cppcheck-suppress readdirCalled
        while (!other && (e = readdir(d))) {
            ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
            if (n < 10 || memcmp(link, "socket:[", 8) != 0)
                continue;
            link[n] = '\0';
            unsigned long ino = strtoul(link + 8, NULL, 10);
            other = listener_first(p, ino) == p->nbyino;
        }
        closedir(d);
        if (other)
            return 1;
    }
    return 0;
}

/* The same from /proc/net/tcp, tcp6 and unix, after the processes were
 * found. Each read of those makes the kernel format every socket of its
 * kind on the host (tens of thousands on a busy one: a third of a second),
 * so it is skipped when no process of the poll holds any socket but the
 * listeners: none of theirs can be in there. A drain ends that way, its
 * last polls cheap. As by sock_diag, the table is read before the fds are
 * walked for the figures (conns.h, lua/baton/steps.lua). */
static int read_proc_net(struct poll *p)
{
    int err = 0;
    conns__proc_queues(p);
    if (!others_held(p))
        return 0;
    keep_first(&err, conns__proc_tcp(p, AF_INET));
    keep_first(&err, conns__proc_tcp(p, AF_INET6));
    keep_first(&err, conns__proc_unix(p));
    return err;
}

int conns_tcp_listener(int family, uint16_t port, uint64_t *ino)
{
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    if (sock_diag != 0) {
        int r = conns__diag_listener(family, port, ino);
        if (!diag_refused(r))
            return r;
        diag_off(r);
    }
    return conns__proc_listener(family, port, ino);
}

int conns_sock_diag_probe(void)
{
    uint64_t ino;
    /* Port 0, where nothing listens: -ENOENT says the dump ran. */
    int r = conns__diag_listener(AF_INET, 0, &ino);
    return r == 0 || r == -ENOENT ? 0 : r;
}

void conns_set_sock_diag(int on)
{
    sock_diag = on;
}

int conns_poll(struct conns_listener *ls, size_t nls, struct conns_gen *gs, size_t ngs)
{
    struct poll p = { .ls = ls, .nls = nls, .gs = gs, .ngs = ngs };
    int err = 0;
    if (!clk_tck) {
        clk_tck = sysconf(_SC_CLK_TCK);
        page_size = sysconf(_SC_PAGESIZE);
        if (clk_tck <= 0)
            clk_tck = 100;
        if (page_size <= 0)
            page_size = 4096;
    }
    if (children_files < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
        children_files = access(path, R_OK) == 0 || errno != ENOENT;
    }
    for (size_t i = 0; i < nls; i++)
        ls[i].queue = ls[i].max_queue = 0;
    for (size_t i = 0; i < ngs; i++) {
        gs[i].established = gs[i].closing = gs[i].nprocs = gs[i].listening = 0;
        gs[i].rss_bytes = 0;
        gs[i].cpu_seconds = 0;
        gs[i].ninos = 0;
    }
    p.info = nls ? calloc(nls, sizeof *p.info) : NULL;
    p.held = nls ? calloc(nls, sizeof *p.held) : NULL;
    p.children = malloc(CHILDREN_BUF);
    if ((nls && (!p.info || !p.held)) || !p.children) {
        free(p.info);
        free(p.held);
        free(p.children);
        return -ENOMEM;
    }

    for (size_t i = 0; i < nls; i++)
        keep_first(&err, listener_read(ls[i].fd, &p.info[i]));
    keep_first(&err, index_listeners(&p));
    int walked = 0;
    if (sock_diag != 0)
        keep_first(&err, read_diag(&p));
    if (sock_diag == 0) {
        keep_first(&err, children_files ? walk_tree(&p) : scan_proc(&p));
        walked = 1;
        keep_first(&err, read_proc_net(&p));
    }
    if (p.t.len)
        qsort(p.t.v, p.t.len, sizeof *p.t.v, by_ino);
    if (!walked)
        keep_first(&err, children_files ? walk_tree(&p) : scan_proc(&p));
    /* Even with no connection in the table: whether it still holds a
     * listener is news too. */
    for (size_t i = 0; (p.t.len || nls) && i < p.mlen; i++)
        count_fds(&p, p.m[i].pid, &gs[p.m[i].gen], (uint32_t)p.m[i].gen + 1);

    if (p.cut)
        keep_first(&err, -ENOBUFS);
    free(p.info);
    free(p.byino);
    free(p.held);
    free(p.children);
    free(p.t.v);
    free(p.m);
    free(p.adopted);
    return err;
}

int conns_members(pid_t leader, pid_t *pids, size_t max, size_t *n)
{
    struct conns_gen g = { .pid = leader };
    struct poll p = { .gs = &g, .ngs = 1 };
    *n = 0;
    if (!clk_tck || children_files < 0) { /* set once, by the first full read */
        int r = conns_poll(NULL, 0, &g, 1);
        if (r < 0 && r != -ENOBUFS)
            return r;
    }
    p.children = malloc(CHILDREN_BUF);
    if (!p.children)
        return -ENOMEM;
    int err = children_files ? walk_tree(&p) : scan_proc(&p);
    for (size_t i = 0; i < p.mlen && *n < max; i++)
        pids[(*n)++] = p.m[i].pid;
    if (!err && (p.cut || p.mlen > max))
        err = -ENOBUFS;
    free(p.children);
    free(p.m);
    free(p.adopted);
    return err;
}

void conns_set_children_files(int children)
{
    children_files = children;
}

int64_t conns_listen_overflows(void)
{
    char buf[16384];
    ssize_t n = read_small("/proc/net/netstat", buf, sizeof buf);
    if (n < 0)
        return n;
    /* Two "TcpExt:" lines: the names, then the values in the same order. */
    char *names = strstr(buf, "TcpExt:");
    char *values = names ? strstr(names + 7, "TcpExt:") : NULL;
    if (!values)
        return -ENOENT;
    names += 7;
    values += 7;
    for (;;) {
        while (*names == ' ')
            names++;
        size_t len = strcspn(names, " \n");
        if (!len)
            return -ENOENT;
        char *end;
        long long v = strtoll(values, &end, 10);
        if (end == values)
            return -ENOENT;
        values = end;
        if (len == 15 && memcmp(names, "ListenOverflows", 15) == 0)
            return v;
        names += len;
    }
}
