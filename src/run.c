/* run.c: wires the loop to the runtime (see run.h). */
#include "run.h"

#include "log.h"
#include "lua_bridge.h"
#include "supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (ok && bridge_open(&b) < 0) {
        log_error("cannot create the Lua VM");
        return 1;
    }
    if (ok && bridge_load_config(&b, file, s->rundir, &s->cfg, err, sizeof err) < 0) {
        log_error("%s", err);
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
    ok = ok && supervisor_setup(s) == 0;
    if (ok && bridge_start_runtime(&b, &s->api, err, sizeof err) < 0) {
        log_error("policy runtime: %s", err);
        ok = 0;
    }
    if (ok)
        supervisor_start(s, bridge_sink(&b));
    else
        s->exit_code = 1;
    int code = supervisor_finish(s);
    if (ok)
        log_info("supervisor exiting with code %d", code);
    bridge_close(&b);
    uv_loop_close(&loop);
    return code;
}

int run_check(const char *file)
{
    struct bridge b;
    struct service_config cfg;
    char err[4096], rundir[4096];
    if (supervisor_runtime_dir(rundir, sizeof rundir) < 0)
        snprintf(rundir, sizeof rundir, "/tmp");
    if (bridge_open(&b) < 0) {
        fprintf(stderr, "baton: cannot create the Lua VM\n");
        return 1;
    }
    int r = bridge_load_config(&b, file, rundir, &cfg, err, sizeof err);
    char *policy = r == 0 ? bridge_config_string(&b, "policy_name") : NULL;
    bridge_close(&b);
    if (r < 0) {
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

int run_control_path(const char *file, char *out, size_t len, char *err, size_t errlen)
{
    struct bridge b;
    struct service_config cfg;
    char rundir[4096];
    if (supervisor_runtime_dir(rundir, sizeof rundir) < 0)
        snprintf(rundir, sizeof rundir, "/tmp");
    if (bridge_open(&b) < 0) {
        snprintf(err, errlen, "cannot create the Lua VM");
        return -ENOMEM;
    }
    int r = bridge_load_config(&b, file, rundir, &cfg, err, errlen);
    bridge_close(&b);
    if (r < 0)
        return r;
    snprintf(out, len, "%s", cfg.control);
    config_free(&cfg);
    return 0;
}
