/* linux_sockdiag.c: what conns.c asks of NETLINK_SOCK_DIAG: one dump of
 * the TCP sockets on the listeners' ports (filtered in the kernel by a
 * bytecode), one of the unix sockets, and the listener on a port (for
 * portholder.c). Linux only; a kernel or a seccomp profile that refuses
 * netlink makes each return a negative errno, and conns.c says so. */
#include "os/conns.h"
#include "os/conns_poll.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static unsigned nl_seq;

/* The states a TCP dump asks for: listeners, and connections a process may
 * still hold. TIME_WAIT is left out: no process holds those. */
#define TCP_DUMP_STATES                                                                            \
    ((1u << TCP_LISTEN) | (1u << TCP_ESTABLISHED) | (1u << TCP_SYN_RECV) | (1u << TCP_FIN_WAIT1) | \
     (1u << TCP_FIN_WAIT2) | (1u << TCP_CLOSE_WAIT) | (1u << TCP_LAST_ACK) | (1u << TCP_CLOSING))
/* The kernel never sends a dump in pieces larger than 32 KiB (netlink_dump
 * caps its buffer there): one read of this size never truncates. */
#define NL_BUF 32768
/* Ports one filter names; more listeners than that go unfiltered (the
 * table is filtered by port here all the same). */
#define BC_MAX_PORTS 256
/* Five ops (20 bytes) per port: S_GE, its port, S_LE, its port, JMP. */
#define BC_OPS_PER_PORT 5

static int name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen && blen && a[0] && b[0]) {
        alen = strnlen(a, alen);
        blen = strnlen(b, blen);
    }
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* -- sock_diag dumps --------------------------------------------------- */

/* A callback of a dump: CTX is the caller's (a poll, a port's search). */
typedef int (*dump_fn)(void *ctx, const struct nlmsghdr *h, int family);

/* Sends request REQ (LEN bytes, its header's seq set here) and calls EACH
 * for every socket the kernel dumps. A callback's error stops the dump:
 * the socket and what the kernel had left to send go with it. */
static int nl_dump(struct nlmsghdr *req, size_t len, void *ctx, dump_fn each, int family)
{
    union {
        struct nlmsghdr h;
        char b[NL_BUF];
    } buf;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    struct timeval tv = { .tv_sec = 2 };
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -errno;
    int err = 0;
    /* The kernel answers at once; a bound all the same, for the loop's sake. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
        err = -errno;
        goto out;
    }
    req->nlmsg_seq = ++nl_seq;
    if (sendto(fd, req, len, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)len) {
        err = -errno;
        goto out;
    }
    for (;;) {
        struct iovec iov = { .iov_base = buf.b, .iov_len = sizeof buf.b };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = recvmsg(fd, &msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno == EAGAIN ? -ETIMEDOUT : -errno;
            goto out;
        }
        if (msg.msg_flags & MSG_TRUNC) {
            err = -EMSGSIZE;
            goto out;
        }
        size_t off = 0, got = (size_t)n;
        while (off + sizeof(struct nlmsghdr) <= got) {
            const struct nlmsghdr *h = (const struct nlmsghdr *)(buf.b + off);
            if (h->nlmsg_len < sizeof *h || h->nlmsg_len > got - off) {
                err = -EBADMSG;
                goto out;
            }
            off += NLMSG_ALIGN(h->nlmsg_len);
            if (h->nlmsg_seq != req->nlmsg_seq)
                continue; /* not an answer to this request */
            if (h->nlmsg_type == NLMSG_DONE) {
                /* Since Linux 4.x DONE carries the dump's error, if any. */
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
                    int e;
                    memcpy(&e, NLMSG_DATA(h), sizeof e);
                    err = e < 0 ? e : 0;
                }
                goto out;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                err = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error ? e->error : -EBADMSG;
                goto out;
            }
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && (err = each(ctx, h, family)) < 0)
                goto out;
        }
    }
out:
    close(fd);
    return err;
}

static int on_tcp(void *ctx, const struct nlmsghdr *h, int family)
{
    struct poll *p = ctx;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return -EBADMSG;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (m->idiag_state == TCP_LISTEN) {
        /* For a listener the kernel reports its accept queue as rqueue
         * and its backlog as wqueue. */
        conns__listener_queue(p, m->idiag_inode, m->idiag_rqueue, m->idiag_wqueue);
        return 0;
    }
    if (!m->idiag_inode)
        return 0; /* no process holds it: queued for accept, orphaned, a request */
    uint16_t port = ntohs(m->id.idiag_sport);
    /* By the listener's family: a dual-stack listener's IPv4 clients are
     * IPv4-mapped IPv6 sockets, in the AF_INET6 dump. */
    if (conns__port_ours(p, family, port))
        return conns__table_add(
            p, m->idiag_inode, m->idiag_state != TCP_ESTABLISHED && m->idiag_state != TCP_SYN_RECV);
    return 0;
}

/* The filter that keeps sockets whose local port is one of PORTS: per port
 * "sport >= P && sport <= P", joined by JMPs (an OR, as iproute2 builds
 * one). Reaching the end accepts a socket, jumping 4 bytes past it rejects
 * it. Returns its length in bytes. */
static size_t port_filter(struct inet_diag_bc_op *op, const uint16_t *ports, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* A miss jumps past this port's 16 bytes and the JMP after them:
         * to the next port's test, or (the last port) to reject. */
        op[k++] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_GE, 8, 20 };
        op[k++] = (struct inet_diag_bc_op){ 0, 0, ports[i] };
        op[k++] = (struct inet_diag_bc_op){ INET_DIAG_BC_S_LE, 8, 12 };
        op[k++] = (struct inet_diag_bc_op){ 0, 0, ports[i] };
        if (i + 1 < n) { /* a match jumps over the other ports' tests: accepted */
            unsigned short rest = (unsigned short)((n - 1 - i) * 16 + (n - 2 - i) * 4);
            op[k++] = (struct inet_diag_bc_op){ INET_DIAG_BC_JMP, 4, (unsigned short)(rest + 4) };
        }
    }
    return k * sizeof *op;
}

struct tcp_req {
    struct nlmsghdr h;
    struct inet_diag_req_v2 r;
    struct nlattr a; /* INET_DIAG_REQ_BYTECODE: the port filter */
    struct inet_diag_bc_op bc[BC_MAX_PORTS * BC_OPS_PER_PORT];
};
_Static_assert(offsetof(struct tcp_req, a) == NLMSG_LENGTH(sizeof(struct inet_diag_req_v2)),
               "the filter attribute follows the request, unpadded");

int conns__dump_tcp(struct poll *p, int family)
{
    struct tcp_req req;
    uint16_t ports[BC_MAX_PORTS];
    size_t nports = 0, many = 0;
    for (size_t i = 0; i < p->nls; i++) {
        if (p->info[i].family != family)
            continue;
        size_t j = 0;
        while (j < nports && ports[j] != p->info[i].port)
            j++;
        if (j < nports)
            continue;
        if (nports == BC_MAX_PORTS)
            many = 1;
        else
            ports[nports++] = p->info[i].port;
    }
    if (!nports)
        return 0; /* no listener of this family: no dump */
    memset(&req, 0, sizeof req);
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (uint8_t)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = TCP_DUMP_STATES;
    size_t len = offsetof(struct tcp_req, a);
    if (!many) {
        size_t bclen = port_filter(req.bc, ports, nports);
        req.a.nla_type = INET_DIAG_REQ_BYTECODE;
        req.a.nla_len = (uint16_t)(NLA_HDRLEN + bclen);
        len += NLA_HDRLEN + bclen;
    }
    req.h.nlmsg_len = (uint32_t)len;
    size_t before = p->t.len;
    int err = nl_dump(&req.h, len, p, on_tcp, family);
    if (err == -EINVAL && !many) {
        /* A kernel that refuses the filter: the whole dump, filtered here. */
        p->t.len = before;
        req.h.nlmsg_len = (uint32_t)offsetof(struct tcp_req, a);
        err = nl_dump(&req.h, req.h.nlmsg_len, p, on_tcp, family);
    }
    return err;
}

static int on_unix(void *ctx, const struct nlmsghdr *h, int family)
{
    struct poll *p = ctx;
    (void)family;
    size_t hdr = NLMSG_LENGTH(sizeof(struct unix_diag_msg));
    if (h->nlmsg_len < hdr)
        return -EBADMSG;
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    const char *name = NULL;
    size_t namelen = 0;
    const struct unix_diag_rqlen *rq = NULL;
    uint8_t shutdown_bits = 0;
    size_t off = NLMSG_ALIGN(hdr);
    while (off + sizeof(struct rtattr) <= h->nlmsg_len) {
        const struct rtattr *a = (const struct rtattr *)((const char *)h + off);
        if (a->rta_len < sizeof *a || a->rta_len > h->nlmsg_len - off)
            return -EBADMSG;
        const char *data = (const char *)a + RTA_LENGTH(0);
        size_t dlen = a->rta_len - RTA_LENGTH(0);
        if (a->rta_type == UNIX_DIAG_NAME) {
            name = data;
            namelen = dlen;
        } else if (a->rta_type == UNIX_DIAG_RQLEN && dlen >= sizeof *rq) {
            rq = (const struct unix_diag_rqlen *)data;
        } else if (a->rta_type == UNIX_DIAG_SHUTDOWN && dlen >= 1) {
            shutdown_bits = (uint8_t)data[0];
        }
        off += RTA_ALIGN(a->rta_len);
    }
    if (m->udiag_state == TCP_LISTEN) {
        /* As for TCP: rqueue is the accept queue, wqueue the backlog. */
        if (rq)
            conns__listener_queue(p, m->udiag_ino, rq->udiag_rqueue, rq->udiag_wqueue);
        return 0;
    }
    if (!m->udiag_ino || !name)
        return 0;
    /* An accepted unix socket carries the name of the listener it came
     * from; the client's end has its own (usually none). */
    for (size_t i = 0; i < p->nls; i++)
        if (p->info[i].family == AF_UNIX && p->info[i].type == m->udiag_type &&
            name_eq(p->info[i].un.sun_path, p->info[i].namelen, name, namelen))
            return conns__table_add(p, m->udiag_ino, shutdown_bits != 0);
    return 0;
}

int conns__dump_unix(struct poll *p)
{
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req;
    size_t i = 0;
    while (i < p->nls && p->info[i].family != AF_UNIX)
        i++;
    if (i == p->nls)
        return 0;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_states = (1u << TCP_LISTEN) | (1u << TCP_ESTABLISHED);
    req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
    return nl_dump(&req.h, sizeof req, p, on_unix, AF_UNIX);
}

/* -- one listener ------------------------------------------------------ */

struct port_search {
    uint16_t port;
    uint64_t ino; /* the first listener found on PORT; 0: none yet */
};

static int on_listener(void *ctx, const struct nlmsghdr *h, int family)
{
    (void)family;
    struct port_search *s = ctx;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return -EBADMSG;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (!s->ino && m->idiag_state == TCP_LISTEN && ntohs(m->id.idiag_sport) == s->port)
        s->ino = m->idiag_inode;
    return 0;
}

int conns__diag_listener(int family, uint16_t port, uint64_t *ino)
{
    struct {
        struct nlmsghdr h;
        struct inet_diag_req_v2 r;
    } req;
    struct port_search s = { .port = port };
    if (family != AF_INET && family != AF_INET6)
        return -EAFNOSUPPORT;
    /* Listeners only, unfiltered: a host has few. */
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (uint8_t)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << TCP_LISTEN;
    int err = nl_dump(&req.h, sizeof req, &s, on_listener, family);
    if (err < 0)
        return err;
    if (!s.ino)
        return -ENOENT;
    *ino = s.ino;
    return 0;
}
