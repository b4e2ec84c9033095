#ifndef BATON_STEER_H
#define BATON_STEER_H

/* Steered listeners: one SO_REUSEPORT group per steered listener, one
 * member per generation, and the classic BPF program that splits new
 * connections between them by the generations' weights (os/reuseport.h).
 *
 * The supervisor owns every member's fd from the generation's spawn until
 * the member leaves, so it alone decides when the group changes: the
 * app's own close() never takes a member out, and a member that leaves is
 * shut down, which takes it out at once whoever else still holds it (the
 * keeper's copy, a helper the app left behind). It tracks each member's
 * position in the group the way the kernel does (members in the order they
 * joined; when one leaves, the group's last member moves into its slot)
 * and re-attaches the program at every change of member or weight.
 *
 * A generation's weight (0-100) applies to all its members; the program
 * splits by weight / sum of weights, so weights need not add to 100 (all 0:
 * an even split). A member leaves after its generation exited: its weight
 * goes to 0 at once, and it is closed once its accept queue is empty and
 * STEER_GRACE seconds passed since its weight went to 0, for handshakes in
 * flight (chosen at the SYN,
 * they land in the member chosen then), or at STEER_LEAVE_MAX seconds
 * whatever its queue, or at once where net.ipv4.tcp_migrate_req moves a
 * closed member's queue to another member.
 *
 * A close must never let the program attached at that moment pick a slot
 * that changed: the kernel moves the group's last member into the closed
 * slot, and a position past the group's new size falls back to the hash
 * (any member, an exited generation's too). So a member is closed only
 * when neither it nor the group's last member has a share in the attached
 * program; otherwise it waits, held, for the next generation's member to
 * join (last, with no share yet): a member per generation exited since
 * the last spawn, at most. What weight to give, and when, is the
 * runtime's decision (gen:weight). */

#include "loop/listeners.h"

#include <stddef.h>
#include <uv.h>

#define STEER_GRACE 0.5
#define STEER_LEAVE_MAX 10.0

struct steer_member {
    unsigned gen;
    int fd;          /* owned */
    int leaving;     /* its generation exited */
    double left_at;  /* when */
    unsigned routed; /* its share in the program attached now (0: never chosen) */
};

struct steer_group {
    struct steer_member *v; /* owned; in the kernel's order */
    size_t n, cap;
};

struct steer_weight {
    unsigned gen, weight;
    double zero_since; /* monotonic: since when the weight is 0 */
};

struct steer {
    uv_loop_t *loop;
    uv_timer_t leave; /* polls leaving members' queues */
    int timer_on;
    struct listener *ls;        /* borrowed: the service's listeners */
    struct steer_group *groups; /* owned; one per listener (empty: not steered) */
    size_t ngroups;
    struct steer_weight *w; /* owned; generations with a member */
    size_t nw;
    int migrate; /* tcp_migrate_req: 1, 0, or negative (unknown) */
    /* Told of each member that joins (FD) or leaves (FD -1), so that the
     * keeper holds each member as long as the group has it; may be NULL. */
    void (*on_member)(void *ctx, size_t li, unsigned gen, int fd);
    void *ctx;
};

/* Sets S up for the NLISTENERS listeners LS (borrowed: their steer_fd is
 * kept up to date) on LOOP. Returns 0 or -ENOMEM. */
int steer_init(struct steer *s, uv_loop_t *loop, struct listener *ls, size_t nlisteners);
/* Stops the timer (the loop is shutting down). */
void steer_stop(struct steer *s);
/* Closes every member (on the supervisor's way out, after the loop ran). */
void steer_close(struct steer *s);

/* Binds a member of listener LI for generation GEN: its fd in
 * *FD (still the group's: the caller passes it, never closes it). Its
 * generation's weight is 100 when no live member of the group has a
 * weight, else 0 until gen:weight says (a new generation gets no
 * connection before the policy gives it some). The first member of a
 * port-0 listener fixes the port for the others. 0 or a negative errno
 * with a reason in ERR. */
int steer_join(struct steer *s, size_t li, unsigned gen, int *fd, char *err, size_t errlen);

/* Sets generation GEN's weight (0-100) and re-attaches the programs.
 * Returns 0, -ENOENT for a generation with no member, or the attach's
 * negative errno. */
int steer_set_weight(struct steer *s, unsigned gen, unsigned weight);

/* GEN's weight, or -1 when it has no member. */
int steer_weight(const struct steer *s, unsigned gen);

/* The connections waiting in GEN's members' accept queues, summed (one
 * that cannot be read counts as 1: not known to be empty). */
unsigned steer_queued(const struct steer *s, unsigned gen);

/* After a takeover: FD (owned from now on) is listener LI's member of
 * generation GEN, next in the group's order (so members must come in the
 * kernel's order, which the sockets kept: it is carried, never derived).
 * WEIGHT is GEN's, 0 since ZERO_SINCE (monotonic, as carried: the clock
 * is the host's; 0: now). steer_restored then attaches the programs. 0 or a
 * negative errno. */
int steer_restore(struct steer *s, size_t li, unsigned gen, int fd, unsigned weight,
                  double zero_since);
/* Attaches every group's program after steer_restore. 0 or a negative errno. */
int steer_restored(struct steer *s);

/* GEN exited: its members leave (see above). */
void steer_gen_exited(struct steer *s, unsigned gen);

#endif
