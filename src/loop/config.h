#ifndef BATON_CONFIG_H
#define BATON_CONFIG_H

/* The parts of the service file the C core needs: what to bind and what to
 * run. The file is loaded and validated in Lua (lua/baton/config.lua, which
 * owns the error messages with file, line and key); this module copies the
 * normalized table it returns into C. */

#include "loop/listeners.h"

#include <lua.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct service_config {
    char *file; /* the service file, as given */
    char *name;
    char *control;              /* control socket path */
    struct listener *listeners; /* owned, in LISTEN_FDS order */
    size_t nlisteners;
    char **argv;             /* owned, NULL-terminated */
    char **env;              /* owned, NULL-terminated "K=V" */
    char *cwd;               /* NULL: the supervisor's */
    char *metrics;           /* Prometheus endpoint address; NULL: none */
    unsigned stats_capacity; /* metrics the stats region holds */
    unsigned fdstore_max;    /* fds the fd store may hold */
    char *state_name;        /* FDNAME of the state blob */
    uint64_t state_max_size; /* bytes a state blob may hold */
    /* Who each generation runs as (`user`, `group`): set_uid/set_gid say
     * whether to change; groups are the user's supplementary groups,
     * computed here (the child may not read the group database). */
    int set_uid, set_gid;
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* owned */
    size_t ngroups;
    /* `limits`: setrlimit in each generation, in this order. */
    struct config_limit {
        int resource;
        rlim_t soft, hard;
    } * limits; /* owned */
    size_t nlimits;
};

/* Reads the normalized config table at stack index IDX. Returns 0 or
 * -EINVAL/-ENOMEM with a reason in ERR. */
int config_from_lua(lua_State *L, int idx, struct service_config *cfg, char *err, size_t errlen);
void config_free(struct service_config *cfg);

/* Makes NEXT (a reloaded file) what RUNNING starts its next generation
 * with: command, env, cwd, limits, fdstore_max, state max_size. What cannot
 * change while the service runs (its sockets, its stats region, its name,
 * the user and group its notify socket belongs to) must be
 * the same: otherwise returns -EINVAL with "FILE: key 'K' changed: ..." in
 * ERR and changes nothing. NEXT is left to config_free either way. */
int config_apply(struct service_config *running, struct service_config *next, char *err,
                 size_t errlen);
/* Whether config_apply would take NEXT: 0, or -EINVAL with the reason in
 * ERR. Changes nothing (`baton reload --dry-run`). */
int config_check(const struct service_config *running, const struct service_config *next, char *err,
                 size_t errlen);

#endif
