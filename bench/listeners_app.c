/* listeners_app: serves every socket in LISTEN_FDS (the scale run hands it
 * 1,000 listeners): each connection gets one "ok" response and is closed.
 * Says READY=1 once all are polled; exits on SIGTERM. */
#include "baton.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

static void on_acceptable(uv_poll_t *p, int status, int events)
{
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < 16; i++) {
        int fd = accept4((int)(intptr_t)p->data, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            return;
        /* The request is small and the answer fixed: write and close. */
        if (write(fd, reply, sizeof reply - 1) < 0)
            perror("listeners_app: write");
        shutdown(fd, SHUT_WR);
        close(fd);
    }
}

static void on_term(uv_signal_t *s, int sig)
{
    (void)sig;
    uv_stop(s->loop);
}

int main(void)
{
    int n = baton_listen_fds();
    if (n <= 0) {
        fprintf(stderr, "listeners_app: no LISTEN_FDS (run it under baton)\n");
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    uv_poll_t *polls = calloc((size_t)n, sizeof *polls);
    if (!polls)
        return 1;
    for (int i = 0; i < n; i++) {
        int fd = BATON_LISTEN_FDS_START + i;
        polls[i].data = (void *)(intptr_t)fd;
        if (uv_poll_init(loop, &polls[i], fd) < 0 ||
            uv_poll_start(&polls[i], UV_READABLE, on_acceptable) < 0) {
            fprintf(stderr, "listeners_app: cannot poll fd %d\n", fd);
            return 1;
        }
    }
    uv_signal_t term;
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_term, SIGTERM);
    baton_notify("READY=1");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
