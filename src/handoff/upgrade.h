#ifndef BATON_UPGRADE_H
#define BATON_UPGRADE_H

/* `baton upgrade`: the supervisor replaces its own image, keeping its pid
 * (its generations stay its children; PID 1 in a container stays PID 1).
 *
 *   1. check (upgrade_begin): the new binary, opened once (the file checked
 *      is the file run), is started as `BINARY upgrade-check FILE` with a
 *      snapshot of the carried state (carry.h) at fd 3. It must read the
 *      state's version, load the service file and its policy, find the
 *      same listeners, and say {"ok":true} on its stdout within
 *      UPGRADE_CHECK_SECONDS. A binary that exits at once, crashes, hangs
 *      or refuses is refused here, and the supervisor serves on. The
 *      runtime hears EV_UPGRADE either way. The check runs in a session
 *      of its own: at the deadline, and once it exited, its whole process
 *      group is killed; the verdict comes from its exit and what it
 *      printed by then, so a process it left holding its output delays
 *      nothing.
 *   2. exec (upgrade_exec, core.exec): once the runtime has no procedure
 *      under way, the whole carried state goes into a memfd, the fds it
 *      names lose close-on-exec, and the supervisor fexecve()s the new
 *      image, which takes over (takeover.h) and answers `baton upgrade`.
 *   3. fallback (upgrade_fall_back): a new image that cannot take over
 *      after all, or crashes while it takes over, execs the old image
 *      again (a handle on it, /proc/self/exe opened before the exec, is
 *      carried), with the reason; the old image takes over and answers
 *      that the upgrade failed.
 *
 * The answer to `baton upgrade`: {"ok":true, "pid", "version", "binary",
 * "duration"} once the new image runs, or {"ok":false,"error"}. */

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <uv.h>

#define UPGRADE_CHECK_SECONDS 10
#define UPGRADE_FAILED_ENV "BATON_UPGRADE_FAILED"

#include "loop/control.h"

struct upgrade {
    /* Set by the owner before any call. */
    uv_loop_t *loop;
    struct control *control; /* where `baton upgrade` asked, and is answered */
    const char *file;        /* the service file, as `baton run` was given it */
    /* The carried state (carry.h) with RUNTIME (the runtime's part, stolen;
     * NULL asks the runtime for it), with the output ring when OUTPUT, or
     * NULL. */
    json_t *(*collect)(void *owner, json_t *runtime, int output);
    /* The check's verdict: OK, or not and WHY (the client was answered). */
    void (*verdict)(void *owner, uint64_t req, int ok, const char *why);
    void *owner;

    uint64_t req; /* the `baton upgrade` under way; 0: none */
    int image;    /* the new binary, opened once */
    char binary[PATH_MAX];
    pid_t pid;     /* its check's process; 0 once reaped */
    pid_t group;   /* its process group (its own session): killed whole */
    int timed_out; /* killed at the deadline */
    int status;    /* its wait status, once reaped */
    uv_pipe_t out; /* its stdout and stderr */
    int out_open;
    char said[4096]; /* the last of what it printed */
    size_t len;
    uv_timer_t timer;
    int timer_init;
    double since; /* monotonic: when it was asked for */
    int stopped;  /* the loop ends: no upgrade now */
};

/* Starts the check of BINARY (NULL: the path this image was started
 * from) for request REQ. Answers REQ itself when it cannot start one. */
void upgrade_begin(struct upgrade *u, uint64_t req, const char *binary);
/* {"cmd":"upgrade","binary":PATH}: upgrade_begin, unless the loop is
 * ending (a supervisor part: supervisor_state.h, CTX the upgrade). */
void upgrade_answer(void *ctx, uint64_t req, json_t *args);
/* A child was reaped: 1 if it was the check's process (wait STATUS). */
int upgrade_reaped(void *ctx, pid_t pid, int status);
/* core.exec: becomes the checked image, carrying RUNTIME (stolen). Returns
 * only on failure: a negative errno, the reason in ERR (REQ answered). */
int upgrade_exec(struct upgrade *u, uint64_t req, json_t *runtime, char *err, size_t errlen);
/* The loop is ending: closes what a check left (its timer); no upgrade
 * starts from now on. */
void upgrade_stop(void *ctx);
/* In a new image about to take over DOC (read from DOC_FD; both fds, this
 * and DOC's handle on the old image, are now upgrade.c's): makes the way
 * back ready, and arms it against a crash (SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGABRT) until upgrade_disarm: the old image comes back and
 * answers that this one "crashed (signal N) while it took over". Not an
 * upgrade (DOC names no old image), or the old image taking back over
 * (BACK_OVER: there is no way back from the way back): the fds close and
 * nothing is armed. Returns 0, or a negative errno when the handler has
 * no stack of its own (armed all the same; a stack overflow is then not
 * caught). */
int upgrade_arm(const json_t *doc, int doc_fd, int back_over);
/* This image cannot take over after all: the old image again, told WHY
 * (in UPGRADE_FAILED_ENV). Returns only when unarmed or when even that
 * fails. */
void upgrade_fall_back(const char *why);
/* SIGTERM, SIGINT and SIGHUP are blocked across the exec, so one sent
 * meanwhile waits instead of killing the image before its handlers are
 * in place: the image that took over (or went back) unblocks them once
 * it handles them. Also harmless in a fresh start. */
void upgrade_release_signals(void);
/* The takeover is done (the upgrade's client is about to be answered):
 * a crash from now on is a crash; the way back is closed. */
void upgrade_disarm(void);

#endif
