/* run.c: wires the loop to the runtime (see run.h). */
#include "run.h"

#include "handoff/carry.h"
#include "base/log.h"
#include "base/rundir.h"
#include "lua/bridge.h"
#include "loop/spawn.h"
#include "loop/supervisor.h"
#include "handoff/keeper_link.h"
#include "handoff/takeover.h"
#include "handoff/upgrade.h"
#include "base/clock.h"
#include "base/nofile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The state a supervisor before this one carried across its exec into
 * this image (`baton upgrade`: carry.h), if any: taken from the
 * environment, so that nothing this image starts sees it. */
static json_t *carried_state(int *fd, char *how, size_t howlen, int *back)
{
    const char *v = getenv(CARRY_ENV);
    if (!v)
        return NULL;
    char err[512];
    json_t *doc = NULL;
    *fd = atoi(v);
    unsetenv(CARRY_ENV);
    if (carry_read_fd(*fd, &doc, err, sizeof err) < 0) {
        log_error("the carried state: %s", err);
        return NULL;
    }
    /* Read once, and gone: a later upgrade, and every generation, must
     * not see it. */
    const char *failed = getenv(UPGRADE_FAILED_ENV);
    *back = failed != NULL;
    if (failed)
        snprintf(how, howlen, "upgrade failed, the old image took back over: %s", failed);
    else
        snprintf(how, howlen, "upgrade");
    unsetenv(UPGRADE_FAILED_ENV);
    return doc;
}

/* What runs beside the loop in `baton run`: the loop, the takeover under
 * way, the upgrade and the keeper link; static, as signal handlers and
 * handles outlive frames. */
static struct supervisor sup;
static struct takeover take;
static struct upgrade upgrade;
static struct keeper_link keeper = { .fd = -1, .predecessor = -1 };
static struct bridge bridge;

/* The carried state as a whole: the loop's part, the envelope, the
 * keeper's part and the runtime's (RUNTIME, stolen; NULL: asked of the
 * runtime now). The upgrade carries the output ring (OUTPUT) and the
 * keeper; the file on disk neither. */
static json_t *collect(struct supervisor *s, json_t *runtime, int output)
{
    const struct event_sink *sink = bridge_sink(&bridge);
    if (!runtime && sink->query)
        runtime = sink->query(sink->ctx, "carry", clock_mono(), 0);
    return takeover_document(supervisor_carry(s, output), runtime,
                             output ? keeper_link_carry(&keeper) : NULL);
}

static json_t *collect_for_upgrade(void *owner, json_t *runtime, int output)
{
    return collect(owner, runtime, output);
}

/* The events the last collect_for_file brought, after sequence number
 * file_events_seq: events_for_file hands them on without another query. */
static json_t *file_events;
static unsigned long long file_events_seq;

/* The copy on disk: the runtime's part without its events, which go to
 * their own file as they come (carry.h). One query brings both: the
 * events after those the file holds come with it. */
static json_t *collect_for_file(void *owner)
{
    const struct event_sink *sink = bridge_sink(&bridge);
    unsigned long long seq = keeper.events_seq;
    json_t *runtime = sink->query && seq < INT_MAX
                          ? sink->query(sink->ctx, "carry_file", clock_mono(), (int)seq)
                          : NULL;
    json_decref(file_events);
    file_events = json_incref(json_object_get(runtime, "events_since"));
    file_events_seq = seq;
    json_object_del(runtime, "events_since");
    return takeover_document(supervisor_carry(owner, 0), runtime, NULL);
}

static json_t *events_for_file(void *owner, unsigned long long seq)
{
    (void)owner;
    if (file_events && file_events_seq == seq) {
        json_t *r = file_events;
        file_events = NULL;
        return r;
    }
    const struct event_sink *sink = bridge_sink(&bridge);
    return sink->query && seq < INT_MAX
               ? sink->query(sink->ctx, "events_since", clock_mono(), (int)seq)
               : NULL;
}

/* core.exec: see upgrade.h. */
static int exec_image(void *owner, uint64_t req, json_t *runtime, char *err, size_t errlen)
{
    return upgrade_exec(owner, req, runtime, err, errlen);
}

/* The upgrade check's verdict goes to the runtime, which decides when. */
static void upgrade_verdict(void *owner, uint64_t req, int ok, const char *why)
{
    supervisor_emit(owner,
                    (struct event){ .kind = EV_UPGRADE, .id = req, .code = ok, .name = why });
}

/* The upgrade and the keeper link, as parts of the supervisor. */
static void wire_parts(struct supervisor *s)
{
    upgrade = (struct upgrade){ .loop = s->loop,
                                .control = &s->control,
                                .file = s->file,
                                .collect = collect_for_upgrade,
                                .verdict = upgrade_verdict,
                                .owner = s,
                                .image = -1 };
    s->api.exec = exec_image;
    s->api.exec_owner = &upgrade;
    supervisor_add_part(s, &(struct supervisor_part){ .ctx = &upgrade,
                                                      .reaped = upgrade_reaped,
                                                      .command = "upgrade",
                                                      .answer = upgrade_answer,
                                                      .stop = upgrade_stop });
    keeper = (struct keeper_link){ .loop = s->loop,
                                   .cfg = &s->cfg,
                                   .stats = &s->stats,
                                   .output = &s->output,
                                   .procs = &s->procs,
                                   .steer = &s->steer,
                                   .collect = collect_for_file,
                                   .events_since = events_for_file,
                                   .ctx = s,
                                   .predecessor = take.keeper_conn,
                                   .fd = -1 };
    take.keeper_conn = -1;
    supervisor_add_part(s, &(struct supervisor_part){ .ctx = &keeper,
                                                      .reaped = keeper_link_reaped,
                                                      .changed = keeper_link_changed,
                                                      .stop = keeper_link_stop,
                                                      .status = keeper_link_status });
    /* The keeper an upgrade carried; after a death, a new one. */
    keeper_link_start(&keeper, s->rundir,
                      take.adopting ? NULL : json_object_get(take.doc, "keeper"));
}

/* Once the runtime has taken over: the `baton upgrade` is answered, what
 * exited meanwhile is reported, as any exit is; the document goes. */
static void finish_takeover(struct supervisor *s)
{
    upgrade_disarm(); /* taken over: from here a crash is a crash */
    takeover_answer(&take, &s->control, s->image.binary);
    supervisor_reap(s); /* what exited during the exec */
    for (size_t i = 0; i < take.ngone; i++)
        supervisor_emit_exit(s, take.gone[i], -1, 0);
    take.ngone = 0;
    json_decref(take.doc);
    take.doc = NULL;
}

int run_service(const char *file)
{
    struct supervisor *s = &sup;
    struct bridge *b = &bridge;
    uv_loop_t loop;
    char err[4096];
    if (uv_loop_init(&loop) < 0)
        return 1;
    take.keeper_conn = -1;
    int r, ok = supervisor_init(s, &loop) == 0;
    int doc_fd = -1, back = 0;
    snprintf(s->file, sizeof s->file, "%s", file);
    take.doc = carried_state(&doc_fd, take.how, sizeof take.how, &back);
    if (take.doc) {
        int r = upgrade_arm(take.doc, doc_fd, back);
        if (r < 0)
            log_warn("upgrade: no stack of its own for a crash while taking over: %s",
                     strerror(-r));
    } else if (doc_fd >= 0)
        close(doc_fd);
    if (ok && bridge_open(b) < 0) {
        log_error("cannot create the Lua VM");
        upgrade_fall_back("cannot create the Lua VM");
        return 1;
    }
    if (ok && bridge_load_config(b, file, s->rundir, &s->cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        upgrade_fall_back(err);
        ok = 0;
    }
    /* A takeover receives as many fds as there are listeners: the limit
     * is raised first (supervisor_setup would do it later). */
    if (ok && !take.doc && (r = nofile_raise()) < 0)
        log_warn("cannot raise the open-file limit: %s", strerror(-r));
    if (ok && !take.doc && takeover_orphaned(&take, s->rundir, &s->cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        ok = 0;
    }
    if (ok && take.doc && takeover_check(take.doc, &s->cfg, err, sizeof err) < 0) {
        log_error("cannot take over: %s", err);
        upgrade_fall_back(err);
        ok = 0;
    }
    if (ok) {
        char *level = bridge_config_string(b, "log_level");
        if (level && getenv("BATON_LOG_LEVEL") == NULL)
            log_set_level((enum log_level)log_level_parse(level));
        free(level);
        char *format = bridge_config_string(b, "log_format");
        if (format && getenv("BATON_LOG_FORMAT") == NULL)
            log_set_format((enum log_format)log_format_parse(format));
        free(format);
    }
    /* From here the loop never waits on its stderr's reader. */
    r = ok ? log_async_start() : 0;
    if (r < 0)
        log_warn("stderr is written from the loop: %s", strerror(-r));
    ok = ok && (!take.doc || supervisor_take_sockets(s, take.doc) == 0) &&
         supervisor_setup(s, take.doc) == 0;
    if (ok)
        wire_parts(s);
    if (ok && take.doc)
        take.client = supervisor_take_state(s, take.doc, take.adopting, take.how, take.gone,
                                            sizeof take.gone / sizeof take.gone[0], &take.ngone);
    if (ok && bridge_start_runtime(b, &s->api, err, sizeof err) < 0) {
        log_error("policy runtime: %s", err);
        ok = 0;
    }
    if (!ok)
        upgrade_fall_back("its set-up failed (see the log above)");
    if (ok) {
        supervisor_start(s, bridge_sink(b), json_object_get(take.doc, "runtime"), take.how);
        if (take.doc)
            finish_takeover(s);
        upgrade_release_signals(); /* a stop sent during an exec: now */
    } else
        s->exit_code = 1;
    int code = supervisor_finish(s);
    keeper_link_close(&keeper);
    if (take.keeper_conn >= 0) /* set-up failed: that keeper holds on */
        close(take.keeper_conn);
    if (ok)
        log_info("supervisor exiting with code %d", code);
    bridge_close(b);
    uv_loop_close(&loop);
    log_async_flush(1000);
    return code;
}

/* Reads FILE (and its policy) as `baton run` would, into CFG, and the
 * policy's name into *POLICY (when not NULL; free() it), in a VM of its
 * own. Returns 0 or a negative errno with the reason in ERR. */
static int read_service(const char *file, struct service_config *cfg, char **policy, char *err,
                        size_t errlen)
{
    struct bridge b;
    char rundir[4096];
    if (runtime_dir(rundir, sizeof rundir) < 0)
        snprintf(rundir, sizeof rundir, "/tmp");
    if (bridge_open(&b) < 0) {
        snprintf(err, errlen, "cannot create the Lua VM");
        return -ENOMEM;
    }
    int r = bridge_load_config(&b, file, rundir, cfg, err, errlen);
    if (policy)
        *policy = r == 0 ? bridge_config_string(&b, "policy_name") : NULL;
    bridge_close(&b);
    return r;
}

int run_check(const char *file)
{
    struct service_config cfg;
    char err[4096], *policy;
    if (read_service(file, &cfg, &policy, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s: ok (service '%s', policy %s, control %s)\n", file, cfg.name, policy ? policy : "?",
           cfg.control);
    printf("fd layout of each generation (LISTEN_FDS=%zu + the fd store):\n", cfg.nlisteners);
    for (size_t i = 0; i < cfg.nlisteners; i++)
        printf("  fd %zu  %-16s %s\n", 3 + i, cfg.listeners[i].name, cfg.listeners[i].address);
    printf("  then the fd store's fds (LISTEN_FDS counts them), then BATON_STATS_FD\n");
    /* The command, looked for as `baton run` will: a warning, not a
     * refusal (it may be installed on the host that runs the file). */
    char *cmd = spawn_resolve(cfg.argv[0], cfg.env);
    if (cmd && access(cmd, X_OK) < 0) { /* a path is taken as it is: look at it */
        free(cmd);
        cmd = NULL;
    }
    if (!cmd)
        fprintf(stderr, "%s: warning: command '%s': %s: `baton run` would fail to start it\n", file,
                cfg.argv[0], errno == ENOENT ? "not found in PATH" : strerror(errno));
    else if (strcmp(cmd, cfg.argv[0]) != 0)
        printf("command: %s\n", cmd);
    free(cmd);
    free(policy);
    config_free(&cfg);
    return 0;
}

int run_upgrade_check(const char *file)
{
    struct service_config cfg;
    char err[4096];
    json_t *doc = NULL;
    const char *v = getenv(CARRY_ENV);
    int r = v ? carry_read_fd(atoi(v), &doc, err, sizeof err) : -EINVAL;
    if (!v)
        snprintf(err, sizeof err, "no carried state (%s): this is run by `baton upgrade`",
                 CARRY_ENV);
    if (r == 0 && (r = read_service(file, &cfg, NULL, err, sizeof err)) == 0) {
        r = takeover_check(doc, &cfg, err, sizeof err);
        config_free(&cfg);
    }
    json_decref(doc);
    json_t *j = r == 0 ? json_pack("{s:b, s:s, s:i}", "ok", 1, "version", BATON_VERSION,
                                   "carry_version", CARRY_VERSION)
                       : json_pack("{s:b, s:s}", "ok", 0, "error", err);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    printf("%s\n", text ? text : "{\"ok\":false}");
    free(text);
    json_decref(j);
    return r == 0 ? 0 : 1;
}

int run_control_path(const char *file, char *out, size_t len, char *err, size_t errlen)
{
    struct bridge b;
    char rundir[4096];
    if (runtime_dir(rundir, sizeof rundir) < 0)
        snprintf(rundir, sizeof rundir, "/tmp");
    if (bridge_open(&b) < 0) {
        snprintf(err, errlen, "cannot create the Lua VM");
        return -ENOMEM;
    }
    int r = bridge_control_path(&b, file, rundir, out, len, err, errlen);
    bridge_close(&b);
    return r;
}
