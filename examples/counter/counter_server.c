/* counter_server: an HTTP/1.1 server whose in-memory state (a hit counter
 * per path) survives restarts: baton's state handover, end to end.
 *
 *   GET /health    200 "ok"
 *   GET /_count    every path and its count, one "PATH COUNT" per line
 *   GET /_save     saves the state now (a checkpoint), answers "saved N bytes"
 *   GET /anything  counts a hit on /anything and answers "/anything N"
 *
 * Under the `handover` policy a restart goes:
 *
 *   SIGUSR1  the checkpoint: stop accepting (new connections wait in the
 *            shared listening socket's queue), finish the requests in
 *            progress, park every keep-alive connection at a request
 *            boundary (stop reading it) and store it in baton's fd store
 *            (FDNAME=conn), then save the counters (baton_state_save). From
 *            here on this process takes no writes, so no hit it answered is
 *            missing from the state it saved.
 *   start    the next generation loads the state (baton_state_load), takes
 *            the parked connections (requests that arrived meanwhile are in
 *            their socket buffers, unread), removes them from the store and
 *            says READY=1.
 *   SIGTERM  this process closes its copies of the parked connections (no
 *            FIN: the new generation holds them) and exits.
 *   SIGUSR2  the restart was rolled back: take the connections out of the
 *            store, read them again, accept again.
 *
 * SIGTERM while not in a checkpoint drains the usual way: Connection: close
 * on each next response, idle connections closed, exit when none are left.
 *
 * Options:
 *   --schema N        the state schema it saves and loads (1: "PATH COUNT"
 *                     lines; 2: "PATH COUNT SINCE", SINCE the generation that
 *                     first counted PATH, 0 when unknown). A blob of another
 *                     schema is refused at start (exit 1): baton migrates or
 *                     refuses before that can happen.
 *   --fault-file F    for tests: when a checkpoint starts, F may name a
 *                     broken blob to store instead (truncated, checksum,
 *                     unsealed, oversize, schema, garbage; sparse: a
 *                     sealed memfd claiming 64 GiB; huge: a well-formed
 *                     1 GiB blob of schema 99).
 */

#include "baton.h"
#include "state_blob.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_PATHS 65536
#define PATH_LEN 64

struct entry {
    char path[PATH_LEN];
    uint64_t count;
    uint32_t since;
};

struct conn {
    uv_tcp_t tcp;
    http_parser parser;
    struct conn *prev, *next;
    char url[PATH_LEN];
    size_t url_len;
    int in_request; /* a request is being read */
    int writes;     /* responses not yet written */
    int parked;     /* stopped at a request boundary, in the fd store */
    int closing;
};

static uv_loop_t *loop;
static uv_poll_t listener;
static int listen_fd = -1;
static uv_signal_t sig_term, sig_int, sig_usr1, sig_usr2;
static uv_timer_t drain_timer;
static http_parser_settings settings;
static struct conn *conns;
static struct entry *table;
static size_t nentries;
static uint32_t schema = 1;
static unsigned generation;
static int draining, frozen, checkpointed;
static const char *fault_file;
static struct baton_stats *stats;
static baton_metric m_requests, m_connections;

/* --- the state ------------------------------------------------------------ */

static struct entry *lookup(const char *path, int create)
{
    for (size_t i = 0; i < nentries; i++)
        if (strcmp(table[i].path, path) == 0)
            return &table[i];
    if (!create || nentries == MAX_PATHS)
        return NULL;
    struct entry *e = &table[nentries++];
    snprintf(e->path, sizeof e->path, "%s", path);
    e->count = 0;
    e->since = generation;
    return e;
}

/* The counters as text in SCHEMA's format. */
static char *state_text(size_t *len)
{
    size_t cap = nentries * (PATH_LEN + 48) + 1, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (size_t i = 0; i < nentries; i++) {
        const struct entry *e = &table[i];
        if (schema == 1)
            n += (size_t)snprintf(out + n, cap - n, "%s %llu\n", e->path,
                                  (unsigned long long)e->count);
        else
            n += (size_t)snprintf(out + n, cap - n, "%s %llu %u\n", e->path,
                                  (unsigned long long)e->count, e->since);
    }
    *len = n;
    return out;
}

static int state_load(void)
{
    struct baton_state st;
    int r = baton_state_load(&st);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        fprintf(stderr, "counter[%d]: cannot load the state: %s\n", (int)getpid(), strerror(-r));
        return -1;
    }
    if (st.schema != schema) {
        fprintf(stderr, "counter[%d]: state has schema %u, this build reads %u\n", (int)getpid(),
                st.schema, schema);
        baton_state_release(&st);
        return -1;
    }
    const char *p = st.data, *end = p + st.len;
    int bad = 0;
    while (p < end && !bad) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        char line[PATH_LEN + 64], path[PATH_LEN];
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        unsigned long long count;
        unsigned since = 0;
        if (l >= sizeof line) {
            bad = 1;
            break;
        }
        memcpy(line, p, l);
        line[l] = '\0';
        int fields = sscanf(line, "%63s %llu %u", path, &count, &since);
        struct entry *e = fields == (schema == 1 ? 2 : 3) ? lookup(path, 1) : NULL;
        if (!e)
            bad = 1;
        else {
            e->count = count;
            e->since = since;
        }
        p += l + 1;
    }
    fprintf(stderr, "counter[%d]: loaded %zu paths from generation %u's state (schema %u)\n",
            (int)getpid(), nentries, st.generation, st.schema);
    baton_state_release(&st);
    if (bad)
        fprintf(stderr, "counter[%d]: the state has a line this build cannot read\n",
                (int)getpid());
    return bad ? -1 : 0;
}

/* For tests: a broken blob of KIND, stored the way an app with a bug would. */
static int store_fault(const char *kind, const char *text, size_t len)
{
    int fd = state_blob_create(text, len, schema, generation);
    if (strcmp(kind, "schema") == 0) {
        close(fd);
        fd = state_blob_create(text, len, 99, generation);
    } else if (strcmp(kind, "oversize") == 0) {
        static char big[1 << 20];
        close(fd);
        memset(big, 'x', sizeof big);
        fd = state_blob_create(big, sizeof big, schema, generation);
    } else if (strcmp(kind, "sparse") == 0 || strcmp(kind, "huge") == 0) {
        /* sparse: a sealed memfd whose header claims 64 GiB (holes: it costs
         * nothing to make); huge: a well-formed 1 GiB blob (of zeros, schema
         * 99), so that checking it means reading all of it. */
        int sparse = strcmp(kind, "sparse") == 0;
        uint64_t length = sparse ? (uint64_t)64 << 30 : (uint64_t)1 << 30;
        close(fd);
        fd = memfd_create("big-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        struct state_blob_header h = { .layout = STATE_BLOB_LAYOUT,
                                       .header_size = STATE_BLOB_HEADER_SIZE,
                                       .length = length,
                                       .schema = sparse ? schema : 99,
                                       .generation = generation };
        memcpy(h.magic, STATE_BLOB_MAGIC, sizeof h.magic);
        static char zeros[1 << 20];
        uint32_t crc = 0;
        for (uint64_t done = 0; !sparse && done < length; done += sizeof zeros)
            crc = state_crc32c(crc, zeros, sizeof zeros);
        h.checksum = crc;
        h.header_checksum = state_crc32c(0, &h, sizeof h);
        if (fd < 0 || ftruncate(fd, (off_t)(STATE_BLOB_HEADER_SIZE + length)) < 0 ||
            pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
            return -EIO;
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    } else if (strcmp(kind, "unsealed") == 0 || strcmp(kind, "truncated") == 0 ||
               strcmp(kind, "checksum") == 0 || strcmp(kind, "garbage") == 0) {
        struct state_blob_header h;
        if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
            return -EIO;
        close(fd);
        fd = memfd_create("broken-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (strcmp(kind, "truncated") == 0)
            h.length += 100; /* says more than it holds */
        if (strcmp(kind, "checksum") == 0)
            h.checksum ^= 1;
        if (strcmp(kind, "garbage") == 0)
            memset(h.magic, '?', sizeof h.magic);
        h.header_checksum = 0;
        h.header_checksum = state_crc32c(0, &h, sizeof h);
        if (write(fd, &h, sizeof h) != (ssize_t)sizeof h || write(fd, text, len) != (ssize_t)len)
            return -EIO;
        if (strcmp(kind, "unsealed") != 0)
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    }
    if (fd < 0)
        return fd;
    int r = baton_fd_store(getenv("BATON_STATE_NAME") ? getenv("BATON_STATE_NAME") : "state", &fd,
                           1, 0);
    close(fd);
    fprintf(stderr, "counter[%d]: stored a broken state blob (%s), as asked\n", (int)getpid(),
            kind);
    return r;
}

static const char *read_fault(void)
{
    static char kind[32];
    FILE *f = fault_file ? fopen(fault_file, "r") : NULL;
    if (!f)
        return NULL;
    if (!fgets(kind, sizeof kind, f))
        kind[0] = '\0';
    fclose(f);
    kind[strcspn(kind, "\r\n")] = '\0';
    return kind[0] ? kind : NULL;
}

static int state_save(void)
{
    size_t len;
    char *text = state_text(&len);
    if (!text)
        return -ENOMEM;
    const char *fault = read_fault();
    int r = fault ? store_fault(fault, text, len) : baton_state_save(text, len, schema);
    free(text);
    return r < 0 ? r : (int)len;
}

/* --- connections ----------------------------------------------------------- */

static void conn_unlink(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void maybe_exit(void)
{
    if (draining && !conns)
        uv_stop(loop);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Closes our descriptor only: no FIN, no shutdown. A parked connection
 * lives on in the fd store and the next generation. */
static void conn_close(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    baton_gauge_add(&m_connections, -1);
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    maybe_exit();
}

static void checkpoint_try(void);

/* A connection at a request boundary with nothing left to write stops
 * being read: what comes next stays in the socket for the next generation. */
static void maybe_park(struct conn *c)
{
    if (frozen && !c->parked && !c->closing && !c->in_request && c->writes == 0) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->parked = 1;
    }
}

struct wreq {
    uv_write_t w;
    char buf[];
};

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    free(w);
    c->writes--;
    if (status < 0 || (c->closing && c->writes == 0)) {
        conn_close(c);
    } else {
        baton_add(&m_requests, 1);
        maybe_park(c);
    }
    checkpoint_try();
}

static void respond(struct conn *c, int code, const char *text, size_t len, int keep)
{
    struct wreq *w = malloc(sizeof *w + len + 256);
    if (!w) {
        conn_close(c);
        return;
    }
    int n = snprintf(w->buf, 256,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                     code, code == 200 ? "OK" : "Error", len, keep ? "" : "Connection: close\r\n");
    memcpy(w->buf + n, text, len);
    uv_buf_t b = uv_buf_init(w->buf, (unsigned)(n + len));
    w->w.data = c;
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->writes++;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->in_request = 1;
    c->url_len = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    size_t room = sizeof c->url - 1 - c->url_len;
    memcpy(c->url + c->url_len, at, len < room ? len : room);
    c->url_len += len < room ? len : room;
    c->url[c->url_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    int keep = http_should_keep_alive(p) && !draining;
    char text[PATH_LEN + 64];
    int n = 0;
    c->in_request = 0;
    if (strcmp(c->url, "/health") == 0) {
        respond(c, 200, "ok\n", 3, keep);
    } else if (strcmp(c->url, "/_count") == 0) {
        size_t len;
        char *all = state_text(&len);
        if (all)
            respond(c, 200, all, len, keep);
        else
            respond(c, 500, "out of memory\n", 14, keep);
        free(all);
    } else if (strcmp(c->url, "/_save") == 0) {
        int r = state_save();
        n = snprintf(text, sizeof text, r < 0 ? "save failed: %d\n" : "saved %d bytes\n", r);
        respond(c, r < 0 ? 500 : 200, text, (size_t)n, keep);
    } else {
        struct entry *e = lookup(c->url, 1);
        if (e) {
            e->count++;
            n = snprintf(text, sizeof text, "%s %llu\n", e->path, (unsigned long long)e->count);
            respond(c, 200, text, (size_t)n, keep);
        } else {
            respond(c, 507, "too many paths\n", 15, keep);
        }
    }
    if (!keep) {
        c->closing = 1;
        return -1; /* nothing after this response is answered */
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        checkpoint_try();
        return;
    }
    if (nread == 0 || c->closing)
        return;
    size_t done = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
    if (!c->closing && (done != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)) {
        c->closing = 1;
        c->in_request = 0;
        respond(c, 400, "bad request\n", 12, 0);
    }
}

static void conn_new(int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(loop, &c->tcp) < 0) {
        free(c);
        close(fd);
        return;
    }
    c->tcp.data = c;
    if (uv_tcp_open(&c->tcp, fd) < 0) {
        close(fd);
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    baton_gauge_add(&m_connections, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_acceptable(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: drained, or another generation took it */
        conn_new(fd);
    }
}

/* --- the checkpoint -------------------------------------------------------- */

/* Once every connection is parked: store them, then the state. */
static void checkpoint_try(void)
{
    if (!frozen || checkpointed)
        return;
    int fds[BATON_NOTIFY_MAX_FDS];
    size_t n = 0, total = 0;
    for (struct conn *c = conns; c; c = c->next)
        if (!c->parked)
            return;
    for (struct conn *c = conns; c; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
            continue;
        fds[n++] = fd;
        if (n == BATON_NOTIFY_MAX_FDS || !c->next) {
            baton_fd_store("conn", fds, n, 1);
            total += n;
            n = 0;
        }
    }
    int r = state_save();
    checkpointed = 1;
    fprintf(stderr, "counter[%d]: checkpoint: %zu connection(s) parked, state %s (%d)\n",
            (int)getpid(), total, r < 0 ? "NOT saved" : "saved", r);
}

static void checkpoint_begin(void)
{
    if (frozen || draining)
        return;
    frozen = 1;
    checkpointed = 0;
    uv_poll_stop(&listener);
    for (struct conn *c = conns; c; c = c->next)
        maybe_park(c);
    checkpoint_try();
}

static void checkpoint_resume(void)
{
    if (!frozen || draining)
        return;
    fprintf(stderr, "counter[%d]: resuming\n", (int)getpid());
    baton_fd_remove("conn"); /* the state stays: stale, but better than none after a crash */
    frozen = checkpointed = 0;
    for (struct conn *c = conns; c; c = c->next) {
        if (c->parked) {
            c->parked = 0;
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        }
    }
    uv_poll_start(&listener, UV_READABLE, on_acceptable);
}

static void on_drain_tick(uv_timer_t *t)
{
    (void)t;
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        if (!c->in_request && c->writes == 0)
            conn_close(c);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (signum == SIGUSR1) {
        checkpoint_begin();
        return;
    }
    if (signum == SIGUSR2) {
        checkpoint_resume();
        return;
    }
    if (draining)
        return;
    draining = 1;
    baton_notify("STOPPING=1");
    uv_poll_stop(&listener);
    if (frozen) {
        /* Handed over: our copies go, the connections stay open. */
        for (struct conn *c = conns, *next; c; c = next) {
            next = c->next;
            conn_close(c);
        }
    }
    uv_timer_start(&drain_timer, on_drain_tick, 1000, 1000);
    maybe_exit();
}

/* Connections a previous generation parked for us. */
static void adopt_connections(void)
{
    int fds[1024];
    int n = baton_fds("conn", fds, 1024);
    for (int i = 0; i < n; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        conn_new(fds[i]);
    }
    if (n > 0) {
        baton_fd_remove("conn");
        fprintf(stderr, "counter[%d]: took over %d connection(s)\n", (int)getpid(), n);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc)
            schema = (uint32_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--fault-file") == 0 && i + 1 < argc)
            fault_file = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--schema 1|2] [--fault-file PATH]\n", argv[0]);
            return 2;
        }
    }
    if (schema < 1 || schema > 2) {
        fprintf(stderr, "counter: --schema must be 1 or 2\n");
        return 2;
    }
    generation = baton_generation();
    table = calloc(MAX_PATHS, sizeof *table);
    listen_fd = baton_listener("http");
    if (!table || listen_fd < 0) {
        fprintf(stderr, "counter: no listener named 'http' (run it under baton)\n");
        return 1;
    }
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    if (state_load() < 0)
        return 1;
    if (baton_stats_open(&stats) >= 0) {
        baton_counter(stats, "http.requests", &m_requests);
        baton_gauge(stats, "http.connections", &m_connections);
    }
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_message_complete = on_message_complete;
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_usr1);
    uv_signal_init(loop, &sig_usr2);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_usr1, on_signal, SIGUSR1);
    uv_signal_start(&sig_usr2, on_signal, SIGUSR2);
    uv_timer_init(loop, &drain_timer);
    uv_poll_init(loop, &listener, listen_fd);
    adopt_connections();
    uv_poll_start(&listener, UV_READABLE, on_acceptable);
    baton_notify("READY=1");
    uv_run(loop, UV_RUN_DEFAULT);
    fprintf(stderr, "counter[%d]: exiting\n", (int)getpid());
    return 0;
}
