#include "generations.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = { "starting", "ready", "active", "draining", "exited" };

const char *gen_state_name(enum gen_state s) { return state_names[s]; }

int gen_state_parse(const char *name)
{
    for (int i = 0; i <= GEN_EXITED; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -EINVAL;
}

struct generation *generations_add(struct generations *g, pid_t pid, double now)
{
    if (g->len == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct generation *v = realloc(g->v, cap * sizeof *v);
        if (!v)
            return NULL;
        g->v = v;
        g->cap = cap;
    }
    struct generation *gen = &g->v[g->len++];
    memset(gen, 0, sizeof *gen);
    gen->id = ++g->next_id;
    gen->pid = pid;
    gen->state = GEN_STARTING;
    gen->started = now;
    gen->exit_code = -1;
    return gen;
}

struct generation *generations_by_id(struct generations *g, unsigned id)
{
    for (size_t i = 0; i < g->len; i++)
        if (g->v[i].id == id)
            return &g->v[i];
    return NULL;
}

struct generation *generations_by_pid(struct generations *g, pid_t pid)
{
    for (size_t i = 0; i < g->len; i++)
        if (g->v[i].pid == pid && g->v[i].state != GEN_EXITED)
            return &g->v[i];
    return NULL;
}

size_t generations_live(const struct generations *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->len; i++)
        n += g->v[i].state != GEN_EXITED;
    return n;
}

void generations_prune(struct generations *g, size_t keep)
{
    size_t exited = g->len - generations_live(g);
    size_t j = 0;
    /* Entries are in id order, so the first exited ones are the oldest. */
    for (size_t i = 0; i < g->len; i++) {
        if (g->v[i].state == GEN_EXITED && exited > keep) {
            exited--;
            continue;
        }
        g->v[j++] = g->v[i];
    }
    g->len = j;
}

void generations_free(struct generations *g)
{
    free(g->v);
    memset(g, 0, sizeof *g);
}
