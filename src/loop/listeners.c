#include "loop/listeners.h"

#include "base/unixpath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    return code;
}

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* "127.0.0.1:80" or "[::1]:80" into l->addr. */
static int parse_inet(struct listener *l, const char *hostport, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;
    const char *hstart = hostport;
    size_t hlen;

    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':')
            return fail(err, errlen, -EINVAL, "bad IPv6 address '%s': expected [ADDR]:PORT",
                        hostport);
        hstart = hostport + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            return fail(err, errlen, -EINVAL, "missing port in '%s'", hostport);
        hlen = (size_t)(colon - hostport);
    }
    if (hlen == 0 || hlen >= sizeof host)
        return fail(err, errlen, -EINVAL, "bad host in '%s'", hostport);
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';

    uint16_t port;
    if (parse_port(colon + 1, &port) < 0)
        return fail(err, errlen, -EINVAL, "bad port in '%s' (0-65535)", hostport);

    memset(&l->addr, 0, sizeof l->addr);
    struct sockaddr_in *in4 = (struct sockaddr_in *)&l->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&l->addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        l->addrlen = sizeof *in4;
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        l->addrlen = sizeof *in6;
    } else {
        return fail(err, errlen, -EINVAL, "'%s' is not a numeric IPv4 or [IPv6] address", host);
    }
    return 0;
}

int listener_parse(struct listener *l, const char *address, char *err, size_t errlen)
{
    if (strncmp(address, "tcp://", 6) == 0) {
        l->kind = LISTENER_TCP;
        return parse_inet(l, address + 6, err, errlen);
    }
    if (strncmp(address, "udp://", 6) == 0) {
        l->kind = LISTENER_UDP;
        return parse_inet(l, address + 6, err, errlen);
    }
    if (strncmp(address, "unix:", 5) == 0) {
        const char *path = address + 5;
        struct sockaddr_un *un = (struct sockaddr_un *)&l->addr;
        if (path[0] != '/')
            return fail(err, errlen, -EINVAL, "unix socket path '%s' must be absolute", path);
        if (strlen(path) >= sizeof un->sun_path)
            return fail(err, errlen, -EINVAL, "unix socket path '%s' is too long", path);
        memset(&l->addr, 0, sizeof l->addr);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        l->addrlen = sizeof *un;
        l->kind = LISTENER_UNIX;
        return 0;
    }
    return fail(err, errlen, -EINVAL, "unknown address '%s' (expected tcp://, udp:// or unix:)",
                address);
}

int listener_bind(struct listener *l, char *err, size_t errlen)
{
    int type = l->kind == LISTENER_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int one = 1, r;

    if (l->kind == LISTENER_UNIX &&
        (r = unixpath_claim(((const struct sockaddr_un *)&l->addr)->sun_path)) < 0)
        goto out;

    int fd = socket(l->addr.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    if (l->kind != LISTENER_UNIX && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail_fd;
    /* Predictable: [::] means IPv6 only; listen on 0.0.0.0 too if both are wanted. */
    if (l->addr.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto fail_fd;
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0)
        goto fail_fd;
    if (type == SOCK_STREAM && listen(fd, l->backlog) < 0)
        goto fail_fd;
    l->fd = fd;
    return 0;

fail_fd:
    r = -errno;
    close(fd);
out:
    snprintf(err, errlen, "listener '%s' (%s): %s", l->name ? l->name : "?",
             l->address ? l->address : "?",
             l->kind == LISTENER_UNIX ? unixpath_strerror(r) : strerror(-r));
    return r;
}

int listener_local_address(const struct listener *l, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    const char *scheme = l->kind == LISTENER_UDP ? "udp" : "tcp";

    int fd = l->steer ? l->steer_fd : l->fd; /* a steered one: any member's */
    if (l->kind == LISTENER_UNIX || fd < 0) {
        snprintf(buf, len, "%s", l->address);
        return 0;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s://%s:%u", scheme, host, ntohs(in4->sin_port));
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "%s://[%s]:%u", scheme, host, ntohs(in6->sin6_port));
    }
    return 0;
}

int listener_bound_as_configured(const struct listener *l, char *bound, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (l->fd < 0 || getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (l->kind == LISTENER_UNIX) {
        const struct sockaddr_un *got = (const struct sockaddr_un *)&ss;
        const struct sockaddr_un *want = (const struct sockaddr_un *)&l->addr;
        snprintf(bound, len, "unix:%s",
                 sl > offsetof(struct sockaddr_un, sun_path) && got->sun_path[0] ? got->sun_path
                                                                                 : "(unnamed)");
        return ss.ss_family == AF_UNIX &&
               strncmp(got->sun_path, want->sun_path, sizeof got->sun_path) == 0;
    }
    listener_local_address(l, bound, len);
    if (ss.ss_family != l->addr.ss_family)
        return 0;
    /* Port 0 in the service file: any port is what it asked for. */
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *got = (const struct sockaddr_in *)&ss;
        const struct sockaddr_in *want = (const struct sockaddr_in *)&l->addr;
        return got->sin_addr.s_addr == want->sin_addr.s_addr &&
               (want->sin_port == 0 || got->sin_port == want->sin_port);
    }
    const struct sockaddr_in6 *got = (const struct sockaddr_in6 *)&ss;
    const struct sockaddr_in6 *want = (const struct sockaddr_in6 *)&l->addr;
    return memcmp(&got->sin6_addr, &want->sin6_addr, sizeof got->sin6_addr) == 0 &&
           (want->sin6_port == 0 || got->sin6_port == want->sin6_port);
}

/* Whether the TCP socket FD, bound to BOUND, would take a connection to SA:
 * the same port, and the same address or a wildcard on either side (a
 * connection to 0.0.0.0 reaches the local host). */
static int reaches(const struct sockaddr_storage *bound, const struct sockaddr *sa)
{
    if (bound->ss_family == AF_INET && sa->sa_family == AF_INET) {
        const struct sockaddr_in *b = (const struct sockaddr_in *)bound;
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        return b->sin_port == a->sin_port &&
               (b->sin_addr.s_addr == a->sin_addr.s_addr || b->sin_addr.s_addr == INADDR_ANY ||
                a->sin_addr.s_addr == INADDR_ANY);
    }
    if (bound->ss_family == AF_INET6) {
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)bound;
        int any = IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr);
        if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
            return b->sin6_port == a->sin6_port &&
                   (any || IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
                    memcmp(&b->sin6_addr, &a->sin6_addr, sizeof a->sin6_addr) == 0);
        }
        /* [::] without IPV6_V6ONLY takes IPv4 connections too. */
        return sa->sa_family == AF_INET && any &&
               b->sin6_port == ((const struct sockaddr_in *)sa)->sin_port;
    }
    return 0;
}

const struct listener *listeners_reaching(const struct listener *ls, size_t n,
                                          const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (ls[i].kind != LISTENER_TCP || ls[i].fd < 0)
            continue;
        if (getsockname(ls[i].fd, (struct sockaddr *)&ss, &sl) == 0 && reaches(&ss, sa))
            return &ls[i];
    }
    return NULL;
}

void listener_close(struct listener *l)
{
    if (l->fd < 0)
        return;
    close(l->fd);
    l->fd = -1;
    if (l->kind == LISTENER_UNIX && !l->passed)
        unlink(((struct sockaddr_un *)&l->addr)->sun_path);
}

int listener_adopt(struct listener *l, int fd, char *err, size_t errlen)
{
    int type = 0, domain = 0, listening = 0;
    socklen_t len = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
    len = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    int want_type = l->kind == LISTENER_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int domain_ok = l->kind == LISTENER_UNIX ? domain == AF_UNIX
                                             : domain == AF_INET || domain == AF_INET6;
    if (type != want_type || !domain_ok || (want_type == SOCK_STREAM && !listening)) {
        snprintf(err, errlen,
                 "listener '%s': the socket the service manager passed is not a %s (%s)",
                 l->name ? l->name : "?",
                 l->kind == LISTENER_UDP    ? "datagram socket"
                 : l->kind == LISTENER_UNIX ? "listening unix stream socket"
                                            : "listening TCP socket",
                 l->address ? l->address : "?");
        return -EINVAL;
    }
    l->fd = fd;
    l->passed = 1;
    return 0;
}
