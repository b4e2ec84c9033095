/* run.c: wires the loop to the runtime (see run.h). */
#include "run.h"

#include "handoff/carry.h"
#include "base/log.h"
#include "base/rundir.h"
#include "lua/bridge.h"
#include "loop/supervisor.h"
#include "handoff/takeover.h"

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

int run_service(const char *file)
{
    static struct supervisor sup; /* large; and signal handlers outlive frames */
    struct supervisor *s = &sup;
    struct bridge b = { 0 };
    uv_loop_t loop;
    char err[4096];
    if (uv_loop_init(&loop) < 0)
        return 1;
    int ok = supervisor_init(s, &loop) == 0;
    int doc_fd = -1, back = 0;
    snprintf(s->file, sizeof s->file, "%s", file);
    s->carried = carried_state(&doc_fd, s->carried_how, sizeof s->carried_how, &back);
    if (s->carried) {
        int r = upgrade_arm(s->carried, doc_fd, back);
        if (r < 0)
            log_warn("upgrade: no stack of its own for a crash while taking over: %s",
                     strerror(-r));
    } else if (doc_fd >= 0)
        close(doc_fd);
    if (ok && bridge_open(&b) < 0) {
        log_error("cannot create the Lua VM");
        upgrade_fall_back("cannot create the Lua VM");
        return 1;
    }
    if (ok && bridge_load_config(&b, file, s->rundir, &s->cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        upgrade_fall_back(err);
        ok = 0;
    }
    if (ok && !s->carried && takeover_orphaned(s, err, sizeof err) < 0) {
        log_error("%s", err);
        ok = 0;
    }
    if (ok && s->carried && takeover_check(s->carried, &s->cfg, err, sizeof err) < 0) {
        log_error("cannot take over: %s", err);
        upgrade_fall_back(err);
        ok = 0;
    }
    if (ok) {
        char *level = bridge_config_string(&b, "log_level");
        if (level && getenv("BATON_LOG_LEVEL") == NULL)
            log_set_level((enum log_level)log_level_parse(level));
        free(level);
        char *format = bridge_config_string(&b, "log_format");
        if (format && getenv("BATON_LOG_FORMAT") == NULL)
            log_set_format((enum log_format)log_format_parse(format));
        free(format);
    }
    ok = ok && (!s->carried || takeover_sockets(s) == 0) && supervisor_setup(s) == 0;
    s->upgrade.collect = takeover_collect; /* the wiring: upgrade.h cannot know the supervisor */
    if (ok)
        supervisor_keep(s);
    if (ok && s->carried)
        takeover_state(s);
    if (ok && bridge_start_runtime(&b, &s->api, err, sizeof err) < 0) {
        log_error("policy runtime: %s", err);
        ok = 0;
    }
    if (!ok)
        upgrade_fall_back("its set-up failed (see the log above)");
    if (ok) {
        supervisor_start(s, bridge_sink(&b));
        takeover_finish(s);
    } else
        s->exit_code = 1;
    int code = supervisor_finish(s);
    if (ok)
        log_info("supervisor exiting with code %d", code);
    bridge_close(&b);
    uv_loop_close(&loop);
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
    struct service_config cfg;
    int r = read_service(file, &cfg, NULL, err, errlen);
    if (r < 0)
        return r;
    snprintf(out, len, "%s", cfg.control);
    config_free(&cfg);
    return 0;
}
