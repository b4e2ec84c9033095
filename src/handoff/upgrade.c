/* upgrade.c: the supervisor replaces its own image (see upgrade.h). */
#include "handoff/upgrade.h"

#include "handoff/carry.h"
#include "base/clock.h"
#include "base/log.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void check_done(struct upgrade *u, int ok, const char *why)
{
    uint64_t req = u->req;
    if (u->timer_init)
        uv_timer_stop(&u->timer);
    if (!ok) {
        control_reply_error(u->control, req, "upgrade refused: %s", why);
        close(u->image);
        u->image = -1;
        u->req = 0;
    }
    u->verdict(u->owner, req, ok, why);
}

/* Both the check's exit and the end of its output are in: the verdict. */
static void check_verdict(struct upgrade *u)
{
    if (u->pid || u->out_open || !u->req)
        return;
    u->said[u->len] = '\0';
    /* Its answer is its last line that parses as JSON. */
    json_t *answer = NULL;
    char *save = NULL, *line = strtok_r(u->said, "\n", &save);
    char last[512] = "";
    for (; line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        if (json_is_object(j)) {
            json_decref(answer);
            answer = j;
        } else {
            json_decref(j);
            snprintf(last, sizeof last, "%s", line);
        }
    }
    char why[PATH_MAX + 1024];
    int st = u->status;
    if (json_is_true(json_object_get(answer, "ok")) && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        json_decref(answer);
        log_info("upgrade: %s passed its check", u->binary);
        check_done(u, 1, NULL);
        return;
    }
    const char *error = json_string_value(json_object_get(answer, "error"));
    if (error)
        snprintf(why, sizeof why, "%s refused to take over: %s", u->binary, error);
    else if (u->timed_out)
        snprintf(why, sizeof why, "%s did not answer its check within %ds%s%s", u->binary,
                 UPGRADE_CHECK_SECONDS, last[0] ? "; it said: " : "", last);
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof why, "%s was killed by signal %d (%s) during its start%s%s", u->binary,
                 WTERMSIG(st), strsignal(WTERMSIG(st)), last[0] ? "; it said: " : "", last);
    else
        snprintf(why, sizeof why,
                 "%s exited with code %d without taking the check (is it a baton of this "
                 "carried-state format?)%s%s",
                 u->binary, WIFEXITED(st) ? WEXITSTATUS(st) : -1, last[0] ? "; it said: " : "",
                 last);
    json_decref(answer);
    check_done(u, 0, why);
}

static void on_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    static char b[4096];
    (void)h;
    *buf = uv_buf_init(b, sizeof b);
}

static void on_out_closed(uv_handle_t *h)
{
    struct upgrade *u = h->data;
    u->out_open = 0;
    check_verdict(u);
}

static void on_out(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct upgrade *u = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)st, on_out_closed);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (u->len == sizeof u->said - 1) { /* keep the last of it */
            memmove(u->said, u->said + sizeof u->said / 2, u->len - sizeof u->said / 2);
            u->len -= sizeof u->said / 2;
        }
        u->said[u->len++] = buf->base[i];
    }
}

/* The check and whatever it started: the check runs in a session of its
 * own (its pid the group's), so a background process it left holding its
 * output goes with it. */
static void kill_check(struct upgrade *u)
{
    if (u->group > 0) {
        kill(-u->group, SIGKILL);
        kill(u->group, SIGKILL); /* before its setsid() */
    }
}

static void on_check_timeout(uv_timer_t *t)
{
    struct upgrade *u = t->data;
    if (u->pid > 0) {
        log_warn("upgrade: %s did not answer its check within %ds: killing it and what it "
                 "started",
                 u->binary, UPGRADE_CHECK_SECONDS);
        u->timed_out = 1;
        kill_check(u);
    }
}

int upgrade_reaped(void *ctx, pid_t pid, int status)
{
    struct upgrade *u = ctx;
    if (pid <= 0 || pid != u->pid)
        return 0;
    u->pid = 0;
    u->status = status;
    /* The verdict comes from its exit, not from the end of its output:
     * what it left behind goes, and its output is what the pipe holds
     * now. */
    kill_check(u);
    u->group = 0;
    uv_os_fd_t fd;
    if (u->out_open && uv_fileno((uv_handle_t *)&u->out, &fd) == 0) {
        uv_read_stop((uv_stream_t *)&u->out);
        char buf[4096];
        ssize_t n;
        /* Bounded: the pipe holds at most its capacity once nobody writes. */
        for (int i = 0; i < 64 && (n = read(fd, buf, sizeof buf)) > 0; i++) {
            uv_buf_t b = uv_buf_init(buf, (unsigned)n);
            on_out((uv_stream_t *)&u->out, n, &b);
        }
        if (!uv_is_closing((uv_handle_t *)&u->out))
            uv_close((uv_handle_t *)&u->out, on_out_closed);
        return 1; /* the verdict once the pipe is closed */
    }
    check_verdict(u);
    return 1;
}

void upgrade_stop(void *ctx)
{
    struct upgrade *u = ctx;
    u->stopped = 1;
    kill_check(u);
    if (u->timer_init)
        uv_close((uv_handle_t *)&u->timer, NULL);
    u->timer_init = 0;
}

void upgrade_answer(void *ctx, uint64_t req, json_t *args)
{
    struct upgrade *u = ctx;
    json_t *b = json_object_get(args, "binary");
    if (b && !json_is_string(b)) {
        control_reply_error(u->control, req, "\"binary\" must be a path");
        return;
    }
    if (u->stopped) {
        control_reply_error(u->control, req, "the supervisor is stopping");
        return;
    }
    upgrade_begin(u, req, json_string_value(b));
}

/* Whether an owner may be trusted with what this supervisor runs: its
 * own user, or root. */
static int trusted_owner(uid_t uid)
{
    return uid == geteuid() || uid == 0;
}

/* sshd's StrictModes for the binary opened as FD (stat ST) at PATH: owned
 * by our user or root, not writable by group or others, and so is every
 * folder above it (its real path), but that a folder with the sticky bit
 * (/tmp) lets nobody rename or remove what is not theirs. Returns 0, or -EPERM with the reason in WHY. */
static int trusted_binary(const char *path, const struct stat *st, char *why, size_t len)
{
    if (!trusted_owner(st->st_uid)) {
        snprintf(why, len, "%s is owned by uid %u, not by this supervisor's user (%u) or root",
                 path, (unsigned)st->st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, len, "%s is writable by %s (mode %04o)", path,
                 st->st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(why, len, "%s: %s", path, strerror(errno));
        return -errno;
    }
    for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
        if (slash == real)
            slash[1] = '\0'; /* the root folder itself, last */
        else
            *slash = '\0';
        struct stat d;
        if (stat(real, &d) < 0) {
            snprintf(why, len, "%s: %s", real, strerror(errno));
            return -errno;
        }
        if (!trusted_owner(d.st_uid)) {
            snprintf(why, len,
                     "the folder %s is owned by uid %u, not by this supervisor's user (%u) or "
                     "root",
                     real, (unsigned)d.st_uid, (unsigned)geteuid());
            return -EPERM;
        }
        if ((d.st_mode & (S_IWGRP | S_IWOTH)) && !(d.st_mode & S_ISVTX)) {
            snprintf(why, len, "the folder %s is writable by %s (mode %04o)", real,
                     d.st_mode & S_IWOTH ? "others" : "its group", (unsigned)(d.st_mode & 07777));
            return -EPERM;
        }
        if (slash == real)
            break;
    }
    return 0;
}

void upgrade_begin(struct upgrade *u, uint64_t req, const char *binary)
{
    if (u->req) {
        control_reply_error(u->control, req, "an upgrade is already under way");
        return;
    }
    char path[PATH_MAX];
    if (binary && binary[0] != '/') {
        control_reply_error(u->control, req, "--binary must be an absolute path, not '%s'", binary);
        return;
    }
    ssize_t own;
    if (binary)
        snprintf(path, sizeof path, "%s", binary);
    else if ((own = os_exe_path(path, sizeof path)) < 0) {
        control_reply_error(u->control, req, "cannot tell this image's path: %s",
                            strerror((int)-own));
        return;
    }
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
        control_reply_error(u->control, req, "upgrade refused: %s: %s", path,
                            fd < 0 || errno ? strerror(errno) : "not an executable file");
        if (fd >= 0)
            close(fd);
        return;
    }
    char why[PATH_MAX * 2 + 128];
    if (trusted_binary(path, &st, why, sizeof why) < 0) {
        control_reply_error(u->control, req, "upgrade refused: %s", why);
        log_warn("upgrade refused: %s", why);
        close(fd);
        return;
    }
    /* The check sees what the exec will carry (fd numbers included, which
     * it does not use). */
    json_t *doc = u->collect(u->owner, NULL, 1);
    int mfd = doc ? carry_to_memfd(doc) : -ENOMEM;
    json_decref(doc);
    int pfd[2] = { -1, -1 };
    if (mfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
        control_reply_error(u->control, req, "upgrade: cannot prepare its check: %s",
                            strerror(mfd < 0 ? -mfd : errno));
        close(fd);
        if (mfd >= 0)
            close(mfd);
        return;
    }
    pid_t pid = os_fork_reset_signals(NULL);
    if (pid == 0) {
        /* The check: fd 3 the carried state, stdout and stderr the pipe;
         * a session of its own, killed whole (kill_check). */
        setsid();
        int devnull = open("/dev/null", O_RDONLY);
        int img = fcntl(fd, F_DUPFD, 10); /* no CLOEXEC: a script's interpreter opens it */
        if (devnull < 0 || img < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 ||
            dup2(pfd[1], 2) < 0 || dup2(mfd, 3) < 0)
            _exit(127);
        if (dup2(img, 4) < 0)
            _exit(127);
        if (os_close_from(5) < 0)
            _exit(127);
        setenv(CARRY_ENV, "3", 1);
        char *argv[] = { "baton", "upgrade-check", (char *)u->file, NULL };
        fexecve(4, argv, environ);
        dprintf(2, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    close(mfd);
    if (pid < 0) {
        close(pfd[0]);
        close(fd);
        control_reply_error(u->control, req, "upgrade: fork: %s", strerror((int)-pid));
        return;
    }
    u->req = req;
    u->image = fd;
    u->pid = pid;
    u->group = pid;
    u->timed_out = 0;
    u->status = 0;
    u->len = 0;
    u->since = clock_mono();
    snprintf(u->binary, sizeof u->binary, "%s", path);
    log_info("upgrade: checking %s (pid %d)", path, (int)pid);
    uv_pipe_init(u->loop, &u->out, 0);
    u->out.data = u;
    if (uv_pipe_open(&u->out, pfd[0]) == 0 &&
        uv_read_start((uv_stream_t *)&u->out, on_out_alloc, on_out) == 0) {
        u->out_open = 1;
    } else {
        uv_close((uv_handle_t *)&u->out, NULL);
        close(pfd[0]);
    }
    if (!u->timer_init) {
        uv_timer_init(u->loop, &u->timer);
        u->timer.data = u;
        u->timer_init = 1;
    }
    uv_timer_start(&u->timer, on_check_timeout, UPGRADE_CHECK_SECONDS * 1000, 0);
}

static void set_inherit(const int *fds, size_t n, int inherit)
{
    for (size_t i = 0; i < n; i++) {
        int fl = fcntl(fds[i], F_GETFD);
        if (fl >= 0)
            fcntl(fds[i], F_SETFD, inherit ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC);
    }
}

/* Execs IMAGE (an fd, not close-on-exec) as `baton run FILE` with the
 * carried state DOC_FD; returns only on failure (-errno). */
static int exec_image(int image, int doc_fd, const char *file)
{
    char num[16];
    snprintf(num, sizeof num, "%d", doc_fd);
    setenv(CARRY_ENV, num, 1);
    char *argv[] = { "baton", "run", (char *)file, NULL };
    log_async_flush(500); /* the queued lines, unless stderr's reader stalls */
    fexecve(image, argv, environ);
    int r = -errno;
    unsetenv(CARRY_ENV);
    return r;
}

/* A stop or a reload asked for across the exec: held (blocked, so it
 * stays pending) until the image that takes over can handle it, instead
 * of killing it by default. */
static void held_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

void upgrade_release_signals(void)
{
    sigset_t held;
    held_signals(&held);
    sigprocmask(SIG_UNBLOCK, &held, NULL);
}

int upgrade_exec(struct upgrade *u, uint64_t req, json_t *runtime, char *err, size_t errlen)
{
    int r;
    if (req != u->req || u->image < 0) {
        json_decref(runtime);
        snprintf(err, errlen, "no checked upgrade for this request");
        return -EINVAL;
    }
    int client = control_client_fd(u->control, req);
    int old_image = os_exe_open(O_RDONLY); /* the way back */
    int image = fcntl(u->image, F_DUPFD, 3);
    json_t *doc = u->collect(u->owner, runtime, 1);
    if (doc)
        json_object_set_new(doc, "upgrade",
                            json_pack("{s:i, s:f, s:i, s:i, s:s}", "client", client, "since",
                                      u->since, "old_image", old_image, "image", image, "binary",
                                      u->binary));
    int mfd = doc ? carry_to_memfd(doc) : -ENOMEM;
    int fds[1024];
    size_t n = doc ? carry_fds(doc, fds, sizeof fds / sizeof fds[0]) : 0;
    if (mfd < 0 || old_image < 0 || image < 0) {
        r = mfd < 0 ? mfd : old_image < 0 ? old_image : -errno;
        snprintf(err, errlen, "cannot prepare the exec: %s", strerror(-r));
    } else {
        /* Requests still waiting would see their connection close: they
         * get an answer first. */
        control_abandon(u->control, req,
                        "the supervisor upgraded its image while this request waited: ask again");
        log_info("upgrade: exec %s (pid %d stays)", u->binary, (int)getpid());
        set_inherit(fds, n, 1);
        sigset_t held, before;
        held_signals(&held);
        sigprocmask(SIG_BLOCK, &held, &before);
        r = exec_image(image, mfd, u->file);
        sigprocmask(SIG_SETMASK, &before, NULL);
        set_inherit(fds, n, 0);
        snprintf(err, errlen, "exec %s: %s", u->binary, strerror(-r));
    }
    json_decref(doc);
    if (mfd >= 0)
        close(mfd);
    if (old_image >= 0)
        close(old_image);
    if (image >= 0)
        close(image);
    control_reply_error(u->control, req, "upgrade failed: %s", err);
    close(u->image);
    u->image = -1;
    u->req = 0;
    return r;
}

/* --- the way back ---------------------------------------------------------- */

/* Everything the way back needs, made ready by upgrade_arm while nothing
 * has gone wrong: a signal handler can only use what is ready (fcntl,
 * sigprocmask and fexecve are async-signal-safe; malloc and printf are
 * not). */
#define BACK_ENV_MAX 4096
static struct {
    volatile sig_atomic_t armed;
    int old;    /* the old image */
    int doc_fd; /* the carried state it takes back */
    int fds[1024];
    size_t n;
    char *argv[4];
    char file[PATH_MAX];
    char carry_env[32];   /* CARRY_ENV=DOC_FD */
    char failed_env[768]; /* UPGRADE_FAILED_ENV=why */
    char *envp[BACK_ENV_MAX];
    sigset_t mask; /* the mask at arm: a crash handler runs under another */
    struct sigaction before[5];
    stack_t stack_before;
    int stack_set;
} back = { .old = -1, .doc_fd = -1 };

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
#define NCRASH (sizeof crash_signals / sizeof crash_signals[0])
static char crash_stack[64 * 1024]; /* a stack overflow leaves none */

/* Execs the old image with the carried state; returns only if it cannot. */
static void go_back(void)
{
    set_inherit(back.fds, back.n, 1);
    set_inherit(&back.doc_fd, 1, 1);
    set_inherit(&back.old, 1, 1);
    sigprocmask(SIG_SETMASK, &back.mask, NULL);
    fexecve(back.old, back.argv, back.envp);
}

static void on_crash(int sig)
{
    if (back.armed) {
        back.armed = 0;
        /* "...=it crashed (signal NN) ...": the number, written by hand. */
        char *p = strstr(back.failed_env, "NN");
        if (p) {
            p[0] = (char)('0' + sig / 10 % 10);
            p[1] = (char)('0' + sig % 10);
        }
        static const char msg[] = "baton: this image crashed while taking over: back to the old\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        go_back();
    }
    signal(sig, SIG_DFL); /* the way back failed, or is no more: die of it */
    raise(sig);
}

int upgrade_arm(const json_t *doc, int doc_fd, int back_over)
{
    const json_t *up = json_object_get(doc, "upgrade");
    int old = carry_int(up, "old_image", -1), image = carry_int(up, "image", -1);
    /* The fd this image was exec'd from: open, not close-on-exec (a
     * script's interpreter opens it by /dev/fd), and done with. The image
     * going back over closed it before. */
    if (image >= 0 && !back_over)
        close(image);
    if (old < 0 || back_over || back.armed) {
        if (old >= 0)
            close(old);
        close(doc_fd);
        return 0;
    }
    back.old = old;
    back.doc_fd = doc_fd;
    back.n = carry_fds(doc, back.fds, sizeof back.fds / sizeof back.fds[0]);
    snprintf(back.file, sizeof back.file, "%s",
             json_string_value(json_object_get(doc, "file")) ?: "");
    back.argv[0] = "baton";
    back.argv[1] = "run";
    back.argv[2] = back.file;
    back.argv[3] = NULL;
    snprintf(back.carry_env, sizeof back.carry_env, "%s=%d", CARRY_ENV, doc_fd);
    snprintf(back.failed_env, sizeof back.failed_env,
             "%s=it crashed (signal NN) while it took over", UPGRADE_FAILED_ENV);
    size_t k = 0;
    back.envp[k++] = back.carry_env;
    back.envp[k++] = back.failed_env;
    size_t lc = strlen(CARRY_ENV), lf = strlen(UPGRADE_FAILED_ENV);
    for (char **e = environ; *e && k < BACK_ENV_MAX - 1; e++) {
        if ((strncmp(*e, CARRY_ENV, lc) == 0 && (*e)[lc] == '=') ||
            (strncmp(*e, UPGRADE_FAILED_ENV, lf) == 0 && (*e)[lf] == '='))
            continue;
        back.envp[k++] = *e;
    }
    back.envp[k] = NULL;
    sigprocmask(SIG_SETMASK, NULL, &back.mask);
    /* Its own stack, for a crash that is a stack overflow; without one
     * (it could not be set) every other crash is still caught. */
    stack_t st = { .ss_sp = crash_stack, .ss_size = sizeof crash_stack };
    int r = sigaltstack(&st, &back.stack_before) < 0 ? -errno : 0;
    /* SA_RESETHAND: a crash in the handler itself ends the process.
     * SA_NODEFER: the image we go back to must not start with the signal
     * blocked (the mask is restored anyway). */
    struct sigaction sa = { .sa_handler = on_crash,
                            .sa_flags = (r == 0 ? SA_ONSTACK : 0) | SA_RESETHAND | SA_NODEFER };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NCRASH; i++)
        sigaction(crash_signals[i], &sa, &back.before[i]);
    back.stack_set = r == 0;
    back.armed = 1;
    return r;
}

void upgrade_fall_back(const char *why)
{
    if (!back.armed)
        return; /* not an upgrade, or the way back is gone */
    log_error("upgrade: this image cannot take over (%s): back to the old image", why);
    back.armed = 0;
    snprintf(back.failed_env, sizeof back.failed_env, "%s=%s", UPGRADE_FAILED_ENV, why);
    go_back();
    log_error("upgrade: cannot exec the old image either: %s", strerror(errno));
    set_inherit(back.fds, back.n, 0);
}

void upgrade_disarm(void)
{
    if (back.old < 0)
        return;
    back.armed = 0;
    for (size_t i = 0; i < NCRASH; i++)
        sigaction(crash_signals[i], &back.before[i], NULL);
    if (back.stack_set)
        sigaltstack(&back.stack_before, NULL);
    close(back.old);
    close(back.doc_fd);
    back.old = back.doc_fd = -1;
}
