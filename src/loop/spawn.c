#include "loop/spawn.h"

#include "loop/config.h"

#include "base/nofile.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define LISTEN_PID_PREFIX "LISTEN_PID="
#define MAX_ENV 4096

static int env_key_eq(const char *a, const char *b)
{
    while (*a && *a != '=' && *a == *b) {
        a++;
        b++;
    }
    return (*a == '=' || *a == '\0') && (*b == '=' || *b == '\0');
}

static int overridden(const char *entry, char *const *env)
{
    if (env_key_eq(entry, "LISTEN_PID") || env_key_eq(entry, "LISTEN_FDS") ||
        env_key_eq(entry, "LISTEN_FDNAMES") || env_key_eq(entry, "NOTIFY_SOCKET"))
        return 1;
    for (size_t i = 0; env && env[i]; i++)
        if (env_key_eq(entry, env[i]))
            return 1;
    return 0;
}

/* environ minus what ENV overrides, plus ENV, plus a LISTEN_PID slot that
 * the child fills in. Everything is allocated before fork: the child only
 * writes digits into PIDSLOT. */
static char **build_env(char *const *env, char **pidslot)
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (env && env[m])
        m++;
    if (n + m + 2 > MAX_ENV)
        return NULL;
    char **out = calloc(n + m + 2, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!overridden(environ[i], env))
            out[k++] = environ[i];
    for (size_t i = 0; i < m; i++)
        out[k++] = env[i];
    *pidslot = malloc(sizeof LISTEN_PID_PREFIX + 24);
    if (!*pidslot) {
        free(out);
        return NULL;
    }
    strcpy(*pidslot, LISTEN_PID_PREFIX);
    out[k++] = *pidslot;
    out[k] = NULL;
    return out;
}

static const char *env_lookup(char *const *env, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
            return env[i] + kl + 1;
    return getenv(key);
}

char *spawn_resolve(const char *cmd, char *const *env)
{
    if (strchr(cmd, '/'))
        return strdup(cmd);
    const char *path = env_lookup(env, "PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char buf[PATH_MAX];
    while (*path) {
        size_t len = strcspn(path, ":");
        if (len > 0 && len + strlen(cmd) + 2 <= sizeof buf) {
            memcpy(buf, path, len);
            buf[len] = '/';
            strcpy(buf + len + 1, cmd);
            if (access(buf, X_OK) == 0)
                return strdup(buf);
        }
        path += len;
        if (*path == ':')
            path++;
    }
    errno = ENOENT;
    return NULL;
}

static void put_pid(char *slot, pid_t pid)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid > 0);
    char *p = slot + sizeof LISTEN_PID_PREFIX - 1;
    while (n > 0)
        *p++ = digits[--n];
    *p = '\0';
}

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void child(const struct launch_plan *o, const char *path, char **envp, char *pidslot,
                  int *tmp, int errpipe)
{
    int e;
    /* A session of its own (and so a process group of its own, led by it):
     * no other process can join either, so a notify datagram from this
     * session is this generation's (supervisor.c's sender()). */
    setsid();

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
        goto fail;
    /* stdout and stderr: the pipes the supervisor reads (its own when -1). */
    if ((o->out_fd >= 0 && dup2(o->out_fd, STDOUT_FILENO) < 0) ||
        (o->err_fd >= 0 && dup2(o->err_fd, STDERR_FILENO) < 0))
        goto fail;
    /* Each source to its target, 3 + i, in that order. A source that
     * sits at the target of an earlier one would be overwritten before
     * its turn: only those are first moved above the target range
     * (OWNER: which source sits at each target). So a supervisor whose
     * listeners are in order, in place or shifted up by the fds it opened
     * first, needs no spare fd: 10,000 listeners must not need 10,000
     * more fds than the supervisor holds. (The sources are distinct fds.) */
    int base = 3 + (int)o->nfds, *owner = tmp + o->nfds;
    for (size_t i = 0; i < o->nfds; i++)
        owner[i] = -1;
    for (size_t i = 0; i < o->nfds; i++) {
        tmp[i] = o->fds[i];
        if (tmp[i] >= 3 && tmp[i] < base)
            owner[tmp[i] - 3] = (int)i;
    }
    for (size_t i = 0; i < o->nfds; i++) {
        int j = owner[i];
        if (j > (int)i && tmp[j] == 3 + (int)i &&
            (tmp[j] = fcntl(tmp[j], F_DUPFD_CLOEXEC, base)) < 0)
            goto fail;
        if (tmp[i] == 3 + (int)i ? fcntl(tmp[i], F_SETFD, 0) < 0
                                 : dup2(tmp[i], 3 + (int)i) < 0) /* dup2 clears FD_CLOEXEC */
            goto fail;
    }
    /* Nothing else of the supervisor's leaks into the app, whatever flags
     * it had. Close-on-exec rather than closed: ERRPIPE stays for a failed
     * exec to report on. */
    if ((e = os_cloexec_from(base)) < 0) {
        errno = -e;
        goto fail;
    }
    if (o->cwd && chdir(o->cwd) < 0)
        goto fail;
    /* The open-file limit the supervisor started with, not its raised one;
     * then the service file's `limits`, set while still privileged (a
     * hard limit over the supervisor's needs root). */
    if (nofile_for_children())
        setrlimit(RLIMIT_NOFILE, nofile_for_children());
    for (size_t i = 0; i < o->nlimits; i++) {
        struct rlimit rl = { .rlim_cur = o->limits[i].soft, .rlim_max = o->limits[i].hard };
        if (setrlimit(o->limits[i].resource, &rl) < 0)
            goto fail;
    }
    /* The service file's user and group, last: groups, then gid, then uid
     * (once the uid changed, nothing else may). */
    if (o->set_uid || o->set_gid) {
        if (setgroups(o->set_uid ? o->ngroups : 0, o->groups) < 0 && (o->set_uid || errno != EPERM))
            goto fail;
        if (o->set_gid && setgid(o->gid) < 0)
            goto fail;
    }
    if (o->set_uid && setuid(o->uid) < 0)
        goto fail;
    put_pid(pidslot, getpid());
    execve(path, o->argv, envp);
fail:
    e = errno;
    if (write(errpipe, &e, sizeof e) < 0) { /* nothing more to do */
    }
    _exit(127);
}

int spawn_process(const struct launch_plan *o, pid_t *pid, char *err, size_t errlen)
{
    int r = 0, pipefd[2] = { -1, -1 };
    char *pidslot = NULL, **envp = NULL;
    int *tmp = NULL;
    char *path = spawn_resolve(o->argv[0], o->env);

    if (!path) {
        r = -errno;
        snprintf(err, errlen, "command '%s': %s", o->argv[0],
                 r == -ENOENT ? "not found in PATH" : strerror(-r));
        return r;
    }
    envp = build_env(o->env, &pidslot);
    tmp = calloc(2 * o->nfds + 1, sizeof *tmp); /* the child's sources, and their owners */
    if (!envp || !tmp) {
        r = -ENOMEM;
        snprintf(err, errlen, "spawn: out of memory or too many environment entries");
        goto out;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        r = -errno;
        char fds[64] = "";
        if (r == -EMFILE || r == -ENFILE)
            nofile_describe(fds, sizeof fds);
        snprintf(err, errlen, "spawn: pipe: %s%s%s%s", strerror(-r),
                 *fds ? ": the supervisor ran short of fds (" : "", fds, *fds ? ")" : "");
        goto out;
    }
    /* An app starts with no signal blocked, whatever the supervisor holds. */
    sigset_t none;
    sigemptyset(&none);
    pid_t p = os_fork_reset_signals(&none);
    if (p < 0) {
        r = p;
        snprintf(err, errlen, "spawn: fork: %s", strerror(-r));
        goto out;
    }
    if (p == 0)
        child(o, path, envp, pidslot, tmp, pipefd[1]);

    close(pipefd[1]);
    pipefd[1] = -1;
    int child_errno = 0;
    ssize_t n;
    do
        n = read(pipefd[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof child_errno) {
        /* exec failed: reap it here, it never became an app process. */
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
        r = -child_errno;
        snprintf(err, errlen, "command '%s'%s%s: %s%s", o->argv[0], o->cwd ? " in " : "",
                 o->cwd ? o->cwd : "", strerror(child_errno),
                 child_errno == EMFILE ? ": the supervisor ran short of fds (the new process "
                                         "holds a copy of them until exec)"
                                       : "");
        goto out;
    }
    *pid = p;
out:
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    free(path);
    free(envp);
    free(pidslot);
    free(tmp);
    return r;
}
