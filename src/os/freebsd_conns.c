/* freebsd_conns.c: generations' connections, queues and processes on FreeBSD (see conns.h).
 *
 * conns.h's figures from FreeBSD's sysctls (sysctl(3), the tables netstat
 * and sockstat read), where Linux reads sock_diag and /proc:
 *   - a listener's accept queue and backlog: getsockopt SO_LISTENQLEN and
 *     SO_LISTENQLIMIT (getsockopt(2)), one call each;
 *   - the connections on the listeners' ports: net.inet.tcp.pcblist (every
 *     TCP socket of both families, struct xtcpcb: its local port, its
 *     state, its socket's kernel address); on their paths:
 *     net.local.stream.pcblist and net.local.seqpacket.pcblist (struct
 *     xunpcb: the bound path an accepted socket shares with its listener);
 *   - a generation's processes: kern.proc.session.PID (struct kinfo_proc:
 *     every process of the session, orphans too, with their memory and
 *     CPU time);
 *   - which process holds which socket: kern.file (struct xfile: pid, fd,
 *     and the same kernel address of the socket).
 * So a poll costs a dump per table in use, whatever the number of
 * processes: FreeBSD names a socket by its kernel address where Linux
 * names it by inode, and conns_tcp_listener gives that address. The dumps
 * are whole tables of the host, bounded by DUMP_MAX each. */
#include "os/conns.h"

#include "base/log.h"

#include <sys/param.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/socketvar.h>
#include <sys/sysctl.h>
#include <sys/un.h>
#include <sys/unpcb.h>
#include <sys/user.h>

#include <netinet/in.h>
#include <netinet/in_pcb.h>
#include <netinet/tcp_fsm.h>
#include <netinet/tcp_var.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most one dump may take: kern.file holds every open file of the host
 * (an xfile is 128 bytes: two million files), a pcblist every socket. */
#define DUMP_MAX ((size_t)256 << 20)

static int warned_sockets, warned_procs, warned_dump;

/* -- dumps --------------------------------------------------------------- */

/* Reads the sysctl named by MIB whole into a new buffer (*OUT, *LEN bytes).
 * The table may grow between the call that sizes it and the call that
 * reads it: a quarter more room, and a few tries. Returns 0, -ENOBUFS past
 * DUMP_MAX, or a negative errno. */
static int dump(const int *mib, unsigned miblen, void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    for (int tries = 0; tries < 4; tries++) {
        size_t want = 0;
        if (sysctl(mib, miblen, NULL, &want, NULL, 0) < 0)
            return -errno;
        want += want / 4 + 4096;
        if (want > DUMP_MAX) {
            if (!warned_dump)
                log_warn("conns: a kernel table holds more than %zu MiB: figures cut",
                         DUMP_MAX >> 20);
            warned_dump = 1;
            return -ENOBUFS;
        }
        void *buf = malloc(want);
        if (!buf)
            return -ENOMEM;
        size_t got = want;
        if (sysctl(mib, miblen, buf, &got, NULL, 0) == 0) {
            *out = buf;
            *len = got;
            return 0;
        }
        int e = errno;
        free(buf);
        if (e != ENOMEM)
            return -e;
    }
    return -ENOBUFS;
}

static int dump_named(const char *name, void **out, size_t *len)
{
    int mib[CTL_MAXNAME];
    size_t miblen = CTL_MAXNAME;
    if (sysctlnametomib(name, mib, &miblen) < 0)
        return -errno;
    return dump(mib, (unsigned)miblen, out, len);
}

/* -- what the poll learns -------------------------------------------------- */

struct lsn {     /* a listener */
    uint64_t so; /* its socket's kernel address (kern.file), 0 unknown */
    int family;  /* AF_INET, AF_INET6, AF_UNIX; 0: not a socket we read */
    int type;
    uint16_t port;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t pathlen;
};

struct conn {
    uint64_t so;   /* its socket's kernel address */
    uint32_t seen; /* 1 + the index of the last generation that counted it */
    uint8_t closing;
};

struct poll {
    struct conns_listener *ls;
    struct lsn *info;
    size_t nls;
    struct conn *v;
    size_t len, cap;
    int cut;
};

static int conn_add(struct poll *p, uint64_t so, int closing)
{
    if (p->len == CONNS_MAX_SOCKETS) {
        if (!warned_sockets)
            log_warn("conns: more than %d connections on the listeners: figures cut there",
                     CONNS_MAX_SOCKETS);
        warned_sockets = 1;
        p->cut = 1;
        return -ENOBUFS;
    }
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        if (cap > CONNS_MAX_SOCKETS)
            cap = CONNS_MAX_SOCKETS;
        struct conn *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->len++] = (struct conn){ .so = so, .closing = (uint8_t)(closing != 0) };
    return 0;
}

static int by_so(const void *a, const void *b)
{
    uint64_t x = ((const struct conn *)a)->so, y = ((const struct conn *)b)->so;
    return x < y ? -1 : x > y;
}

static struct conn *conn_find(struct poll *p, uint64_t so)
{
    struct conn key = { .so = so };
    return p->len ? bsearch(&key, p->v, p->len, sizeof *p->v, by_so) : NULL;
}

/* A listener's family, port or path, and its accept queue. */
static int listener_read(struct conns_listener *cl, struct lsn *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int type;
    socklen_t tl = sizeof type;
    memset(l, 0, sizeof *l);
    cl->queue = cl->max_queue = 0;
    if (getsockname(cl->fd, (struct sockaddr *)&ss, &sl) < 0 ||
        getsockopt(cl->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET && type == SOCK_STREAM)
        l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6 && type == SOCK_STREAM)
        l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else if (ss.ss_family == AF_UNIX && (type == SOCK_STREAM || type == SOCK_SEQPACKET)) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = sl > off ? sl - off : 0;
        if (n > sizeof l->path)
            n = sizeof l->path;
        memcpy(l->path, un->sun_path, n);
        l->pathlen = strnlen(l->path, n);
    } else
        return 0; /* a datagram socket: no queue, no connections */
    l->family = ss.ss_family;
    l->type = type;
    /* getsockopt(2): the complete connections waiting for accept, and the
     * backlog listen(2) set. */
    int q = 0, max = 0;
    socklen_t ql = sizeof q, ml = sizeof max;
    if (getsockopt(cl->fd, SOL_SOCKET, SO_LISTENQLEN, &q, &ql) < 0 ||
        getsockopt(cl->fd, SOL_SOCKET, SO_LISTENQLIMIT, &max, &ml) < 0)
        return -errno;
    cl->queue = q > 0 ? (unsigned)q : 0;
    cl->max_queue = max > 0 ? (unsigned)max : 0;
    return 0;
}

/* -- connections ------------------------------------------------------------ */

static int tcp_family_match(int family, unsigned vflag)
{
    /* An IPv6 listener also accepts IPv4 connections unless it is v6-only. */
    return family == AF_INET6 ? (vflag & (INP_IPV4 | INP_IPV6)) != 0 : (vflag & INP_IPV4) != 0;
}

/* The TCP connections on the listeners' ports. */
static int read_tcp(struct poll *p)
{
    void *buf;
    size_t len;
    int r = dump_named("net.inet.tcp.pcblist", &buf, &len);
    if (r < 0)
        return r;
    /* An xinpgen, the records, an xinpgen again (netstat's inet.c). */
    const char *c = buf, *end = c + len;
    if (len < sizeof(struct xinpgen)) {
        free(buf);
        return -EINVAL;
    }
    c += ((const struct xinpgen *)buf)->xig_len;
    while (r == 0 && c + sizeof(struct xtcpcb) <= end) {
        const struct xtcpcb *xt = (const struct xtcpcb *)c;
        if (xt->xt_len != sizeof *xt)
            break; /* the closing xinpgen, or a layout this build does not know */
        c += xt->xt_len;
        int st = xt->t_state, closing;
        if (st == TCPS_SYN_RECEIVED || st == TCPS_ESTABLISHED)
            closing = 0;
        else if (st == TCPS_CLOSE_WAIT || st == TCPS_FIN_WAIT_1 || st == TCPS_CLOSING ||
                 st == TCPS_LAST_ACK || st == TCPS_FIN_WAIT_2)
            closing = 1;
        else
            continue; /* listening, connecting out, closed, TIME_WAIT */
        uint16_t port = ntohs(xt->xt_inp.inp_inc.inc_ie.ie_lport);
        for (size_t i = 0; i < p->nls; i++) {
            const struct lsn *l = &p->info[i];
            if ((l->family == AF_INET || l->family == AF_INET6) && l->port == port &&
                tcp_family_match(l->family, xt->xt_inp.inp_vflag) &&
                xt->xt_inp.xi_socket.xso_so != 0) {
                r = conn_add(p, xt->xt_inp.xi_socket.xso_so, closing);
                break;
            }
        }
    }
    free(buf);
    return r;
}

/* The unix connections on the listeners' paths, of one socket type. An
 * accepted socket is bound to its listener's path (xu_addr); a client's
 * own address is not that path, only its peer's (xu_caddr). */
static int read_unix(struct poll *p, int type)
{
    void *buf;
    size_t len;
    int r = dump_named(type == SOCK_STREAM ? "net.local.stream.pcblist"
                                           : "net.local.seqpacket.pcblist",
                       &buf, &len);
    if (r < 0)
        return r;
    const char *c = buf, *end = c + len;
    if (len < sizeof(struct xunpgen)) {
        free(buf);
        return -EINVAL;
    }
    c += ((const struct xunpgen *)buf)->xug_len;
    while (r == 0 && c + sizeof(struct xunpcb) <= end) {
        const struct xunpcb *xu = (const struct xunpcb *)c;
        if (xu->xu_len != sizeof *xu)
            break;
        c += xu->xu_len;
        const struct xsocket *so = &xu->xu_socket;
        if (so->so_options & SO_ACCEPTCONN || so->xso_so == 0)
            continue; /* a listener itself */
        const char *path = xu->xu_addr.sun_path;
        size_t plen = strnlen(path, sizeof xu->xu_addr.sun_path);
        for (size_t i = 0; i < p->nls; i++) {
            const struct lsn *l = &p->info[i];
            if (l->family == AF_UNIX && l->type == type && l->pathlen && l->pathlen == plen &&
                memcmp(l->path, path, plen) == 0) {
                /* Closing: its peer is gone, or it is shutting down. */
                int closing = xu->unp_conn == 0 || (so->so_state & SS_ISDISCONNECTING);
                r = conn_add(p, so->xso_so, closing);
                break;
            }
        }
    }
    free(buf);
    return r;
}

/* -- processes ---------------------------------------------------------------- */

struct member {
    pid_t pid;
};

static int by_pid(const void *a, const void *b)
{
    pid_t x = ((const struct member *)a)->pid, y = ((const struct member *)b)->pid;
    return x < y ? -1 : x > y;
}

/* Generation G's processes: its session's (kern.proc.session.SID lists
 * every process whose session id is SID, so the main process need not be
 * alive). Fills G's process figures and *M, sorted by pid. */
static int read_session(struct conns_gen *g, struct member **m, size_t *n, int *cut)
{
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_SESSION, (int)g->pid };
    void *buf;
    size_t len;
    *m = NULL;
    *n = 0;
    int r = dump(mib, 4, &buf, &len);
    if (r < 0)
        return r;
    const struct kinfo_proc *kp = buf;
    size_t count = len / sizeof *kp;
    if (count && kp[0].ki_structsize != (int)sizeof *kp) {
        free(buf);
        return -EINVAL;
    }
    if (count > CONNS_MAX_PROCS) {
        if (!warned_procs)
            log_warn("conns: more than %d processes in a generation: figures cut there",
                     CONNS_MAX_PROCS);
        warned_procs = 1;
        count = CONNS_MAX_PROCS;
        *cut = 1;
    }
    *m = calloc(count ? count : 1, sizeof **m);
    if (!*m) {
        free(buf);
        return -ENOMEM;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < count; i++) {
        if (kp[i].ki_stat == SZOMB)
            continue; /* exited: it holds no memory and no fds */
        (*m)[(*n)++].pid = kp[i].ki_pid;
        g->nprocs++;
        g->rss_bytes += (uint64_t)(kp[i].ki_rssize > 0 ? kp[i].ki_rssize : 0) *
                        (uint64_t)(page > 0 ? page : 4096);
        const struct rusage *ru = &kp[i].ki_rusage;
        g->cpu_seconds += (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
                          (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
    }
    free(buf);
    qsort(*m, *n, sizeof **m, by_pid);
    return 0;
}

static void keep_first(int *err, int r)
{
    if (r < 0 && !*err)
        *err = r;
}

int conns_poll(struct conns_listener *ls, size_t nls, struct conns_gen *gs, size_t ngs)
{
    int err = 0;
    struct poll p = { .ls = ls, .nls = nls };
    for (size_t i = 0; i < ngs; i++) {
        gs[i].established = gs[i].closing = gs[i].nprocs = gs[i].listening = 0;
        gs[i].rss_bytes = 0;
        gs[i].cpu_seconds = 0;
    }
    p.info = calloc(nls ? nls : 1, sizeof *p.info);
    uint32_t *held = calloc(nls ? nls : 1, sizeof *held);
    if (!p.info || !held) {
        free(p.info);
        free(held);
        return -ENOMEM;
    }
    int tcp = 0, ustream = 0, useq = 0;
    for (size_t i = 0; i < nls; i++) {
        keep_first(&err, listener_read(&ls[i], &p.info[i]));
        tcp |= p.info[i].family == AF_INET || p.info[i].family == AF_INET6;
        ustream |= p.info[i].family == AF_UNIX && p.info[i].type == SOCK_STREAM;
        useq |= p.info[i].family == AF_UNIX && p.info[i].type == SOCK_SEQPACKET;
    }
    if (tcp)
        keep_first(&err, read_tcp(&p));
    if (ustream)
        keep_first(&err, read_unix(&p, SOCK_STREAM));
    if (useq)
        keep_first(&err, read_unix(&p, SOCK_SEQPACKET));
    if (p.len)
        qsort(p.v, p.len, sizeof *p.v, by_so);

    /* Every open file of the host the caller may see: whose sockets are
     * the listeners (this process's fds), and which generation holds a
     * connection or a listener. */
    void *files = NULL;
    size_t flen = 0;
    int fmib[2] = { CTL_KERN, KERN_FILE };
    int fr = ngs || nls ? dump(fmib, 2, &files, &flen) : 0;
    keep_first(&err, fr);
    const struct xfile *xf = files;
    size_t nf = flen / sizeof *xf;
    if (nf && xf[0].xf_size != sizeof *xf) {
        keep_first(&err, -EINVAL);
        nf = 0;
    }
    pid_t self = getpid();
    for (size_t k = 0; k < nf; k++)
        if (xf[k].xf_pid == self && xf[k].xf_type == DTYPE_SOCKET)
            for (size_t i = 0; i < nls; i++)
                if (xf[k].xf_fd == ls[i].fd)
                    p.info[i].so = xf[k].xf_data;

    for (size_t gi = 0; gi < ngs; gi++) {
        struct conns_gen *g = &gs[gi];
        struct member *m;
        size_t nm;
        int r = read_session(g, &m, &nm, &p.cut);
        keep_first(&err, r);
        if (r < 0)
            continue;
        uint32_t mark = (uint32_t)gi + 1;
        for (size_t k = 0; k < nf && nm; k++) {
            if (xf[k].xf_type != DTYPE_SOCKET)
                continue;
            struct member key = { .pid = xf[k].xf_pid };
            if (!bsearch(&key, m, nm, sizeof *m, by_pid))
                continue;
            struct conn *c = conn_find(&p, xf[k].xf_data);
            if (c && c->seen != mark) {
                /* Counted once however many of its processes share it. */
                c->seen = mark;
                if (c->closing)
                    g->closing++;
                else
                    g->established++;
                continue;
            }
            for (size_t i = 0; i < nls; i++)
                if (p.info[i].so && p.info[i].so == xf[k].xf_data && held[i] != mark) {
                    held[i] = mark;
                    g->listening++;
                }
        }
        free(m);
    }
    free(files);
    free(p.v);
    free(p.info);
    free(held);
    if (p.cut)
        keep_first(&err, -ENOBUFS);
    return err;
}

void conns_set_children_files(int children)
{
    /* FreeBSD finds a session's processes in one sysctl: no children
     * files to choose between. */
    (void)children;
}

/* FreeBSD has no netlink sock_diag: its pcblist sysctls (above) are its
 * one way, so there is nothing to probe or to switch. */
int conns_sock_diag_probe(void)
{
    return -EPROTONOSUPPORT;
}

void conns_set_sock_diag(int on)
{
    (void)on;
}

int conns_tcp_listener(int family, uint16_t port, uint64_t *ino)
{
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    void *buf;
    size_t len;
    int r = dump_named("net.inet.tcp.pcblist", &buf, &len);
    if (r < 0)
        return r;
    r = -ENOENT;
    const char *c = buf, *end = c + len;
    if (len >= sizeof(struct xinpgen))
        c += ((const struct xinpgen *)buf)->xig_len;
    while (c + sizeof(struct xtcpcb) <= end) {
        const struct xtcpcb *xt = (const struct xtcpcb *)c;
        if (xt->xt_len != sizeof *xt)
            break;
        c += xt->xt_len;
        unsigned want = family == AF_INET6 ? INP_IPV6 : INP_IPV4;
        if (xt->t_state == TCPS_LISTEN && ntohs(xt->xt_inp.inp_inc.inc_ie.ie_lport) == port &&
            (xt->xt_inp.inp_vflag & want)) {
            /* Its socket's kernel address: what kern.file names it by. */
            *ino = xt->xt_inp.xi_socket.xso_so;
            r = 0;
            break;
        }
    }
    free(buf);
    return r;
}

int64_t conns_listen_overflows(void)
{
    /* tcp(4): net.inet.tcp.stats, struct tcpstat; tcps_listendrop counts
     * the connections dropped because a listen queue was full (IPv4 and
     * IPv6 alike), for this vnet. */
    struct tcpstat st;
    size_t len = sizeof st;
    if (sysctlbyname("net.inet.tcp.stats", &st, &len, NULL, 0) < 0)
        return -errno;
    if (len != sizeof st)
        return -EINVAL;
    return st.tcps_listendrop > INT64_MAX ? INT64_MAX : (int64_t)st.tcps_listendrop;
}

/* -- a quiet drain's cheap checks (conns.h) ------------------------------------- */

int conns_members(pid_t leader, pid_t *pids, size_t max, size_t *n)
{
    struct conns_gen g = { .pid = leader };
    struct member *m;
    size_t nm;
    int cut = 0;
    *n = 0;
    int r = read_session(&g, &m, &nm, &cut);
    if (r < 0)
        return r;
    for (size_t i = 0; i < nm && *n < max; i++)
        pids[(*n)++] = m[i].pid;
    free(m);
    return 0;
}

/* FreeBSD has no per-process count of open fds as cheap as one stat
 * (kern.proc.filedesc lists every file): the drain reads the kernel's
 * tables at each poll instead, as on Linux before 6.2. */
int conns_fds(const pid_t *pids, size_t n, uint64_t *fds)
{
    (void)pids;
    (void)n;
    *fds = 0;
    return -EOPNOTSUPP;
}

int conns_held(const pid_t *pids, size_t n, const uint32_t *inos, size_t ninos, unsigned *held)
{
    (void)pids;
    (void)n;
    (void)inos;
    (void)ninos;
    *held = 0;
    return -EOPNOTSUPP;
}
