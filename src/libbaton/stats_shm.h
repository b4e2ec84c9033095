#ifndef BATON_STATS_SHM_H
#define BATON_STATS_SHM_H

/* The stats region: one shared-memory file per service, created by the
 * supervisor, mapped by every process of every generation. This header is
 * the layout and the reader's API; apps use the functions in baton.h.
 *
 * Layout, version 1 (all integers native-endian, the region is never moved
 * between machines):
 *
 *   [header: 4096 bytes][entry table: capacity x 384 bytes][value blocks]
 *
 * An entry describes one metric: its name, type, histogram bounds, and the
 * offset of its value block. A value block is STATS_LANES lanes, each on
 * cache lines of its own, of `slots` 8-byte values (1 slot for counters and
 * gauges; for histograms one per bucket, +Inf last, then the sum as a
 * double). Lane 0 is the
 * supervisor's own; generation g writes lane 1 + (g - 1) % 7. The service
 * total of a counter is retired + the sum of all lanes, where `retired` holds
 * what the supervisor folded out of a lane before giving it to a new
 * generation: so a counter keeps counting across any number of generations
 * and nothing is ever reset. A gauge's total is the sum of its lanes.
 *
 * Registration is lock-free: an entry's state word is FREE, CLAIMED (by a
 * pid, for a name hash) or READY (for a name hash), and entries are found by
 * open addressing on the name hash. A writer killed while it claims leaves a
 * CLAIMED entry that the next writer of the same name takes over (its pid is
 * gone); writers of other names skip it; readers never see it. So nobody
 * blocks on a dead writer and no reader sees a torn entry.
 *
 * Compatibility: a region records its layout `version` and the oldest
 * layout `compat_version` that can still use it, and readers navigate by
 * the header_size and entry_size it records, not by their own. A later
 * layout that only appends fields (to the header, to entries) keeps
 * compat_version 1, and every libbaton and supervisor since version 1 keeps
 * reading and writing it; a change that old code would misread raises
 * compat_version, and old code refuses the region (-EPROTO) instead. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STATS_MAGIC 0x315354534e544142ULL /* "BATNSTS1" */
#define STATS_VERSION 1
#define STATS_LANES 8
#define STATS_NAME_MAX 96    /* with the NUL */
#define STATS_BUCKETS_MAX 15 /* finite bounds; +Inf is implied */
#define STATS_HEADER_SIZE 4096
#define STATS_ENTRY_SIZE 384
#define STATS_DEFAULT_CAPACITY 4096
#define STATS_MAX_CAPACITY (1u << 20)

enum stats_type { STATS_COUNTER = 1, STATS_GAUGE = 2, STATS_HISTOGRAM = 3 };

struct stats_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint32_t entry_size;
    uint32_t capacity;
    uint32_t lanes;
    uint32_t compat_version; /* oldest layout a reader or writer must know */
    uint64_t region_size;
    uint64_t values_offset;
    uint64_t values_size;
    uint64_t values_used;                  /* atomic bump allocator */
    uint32_t lane_generation[STATS_LANES]; /* written by the supervisor only */
    /* A gradual drain of a lane's generation: CLOCK_MONOTONIC nanoseconds,
     * 0 when none. Written by the supervisor, read by apps (libbaton's
     * baton_drain_progress). Appended in layout 1: older readers ignore it. */
    uint64_t drain_start_ns[STATS_LANES];
    uint64_t drain_end_ns[STATS_LANES];
};

struct stats_entry {
    uint64_t state; /* atomic; see stats_shm.c */
    uint32_t type;
    uint32_t nbuckets; /* finite bounds of a histogram */
    uint64_t values;   /* offset of the value block in the region */
    char name[STATS_NAME_MAX];
    double bounds[STATS_BUCKETS_MAX];
    uint64_t retired[STATS_BUCKETS_MAX + 2]; /* supervisor only: folded lanes */
};

struct stats_region {
    void *base; /* the mapping; owned */
    size_t size;
    size_t entry_size; /* as the region records it */
    int fd;            /* owned; -1 once closed */
    struct stats_header *hdr;
    struct stats_entry *entries;
};

/* Supervisor: a new region in shared memory sealed against growing and
 * shrinking (close-on-exec). CAPACITY 0 means STATS_DEFAULT_CAPACITY.
 * Where the host has no seals (shmfd.h: Linux before 3.17) the region is
 * an unlinked file of the same size, unsealed: an app that truncates it
 * would crash every process mapping it (SIGBUS), the supervisor too, so
 * there the region trusts its apps. */
int stats_create(struct stats_region *r, uint32_t capacity);
/* Maps an existing region read-write; checks magic, version and sizes.
 * -EPROTO for a region of another layout or version, -EINVAL when damaged. */
int stats_attach(struct stats_region *r, int fd);
void stats_close(struct stats_region *r);

/* Registers (or finds) NAME; returns its entry index or a negative errno:
 * -EINVAL bad name or bounds, -ENAMETOOLONG, -EEXIST registered with another
 * type or other bounds, -ENOSPC region full, -EBUSY a live writer holds the
 * claim for longer than a second. */
int stats_register(struct stats_region *r, const char *name, enum stats_type type,
                   const double *bounds, unsigned nbuckets);
/* Index of a READY entry named NAME, or -ENOENT. */
int stats_find(const struct stats_region *r, const char *name);
/* The entry at INDEX if it is READY and sane, else NULL. */
const struct stats_entry *stats_entry_at(const struct stats_region *r, uint32_t index);

/* Slots per lane of an entry, and a pointer to lane LANE's first slot. */
unsigned stats_slots(const struct stats_entry *e);
uint64_t *stats_lane(const struct stats_region *r, const struct stats_entry *e, unsigned lane);

/* Lane of generation GEN (1..STATS_LANES-1); lane 0 is the supervisor's. */
unsigned stats_lane_of(uint32_t generation);
/* Supervisor, before generation GEN starts: gives it its lane, folding what
 * a previous generation left there into `retired` (counters and histograms)
 * or dropping it (gauges). */
void stats_assign_lane(struct stats_region *r, uint32_t generation);

/* Supervisor: generation GEN drains gradually from START_NS to END_NS
 * (CLOCK_MONOTONIC). */
void stats_set_drain(struct stats_region *r, uint32_t generation, uint64_t start_ns,
                     uint64_t end_ns);
/* 0 (not draining) to 1 (the window is over) for LANE at NOW_NS. */
double stats_drain_progress(const struct stats_region *r, unsigned lane, uint64_t now_ns);

/* Reading. A value of slot SLOT: the service total (LANE < 0), or one lane. */
double stats_read(const struct stats_region *r, const struct stats_entry *e, int lane,
                  unsigned slot);
/* The generation a lane belongs to now (0: none). */
uint32_t stats_lane_generation(const struct stats_region *r, unsigned lane);

/* Checks a metric name: 1-95 characters of [A-Za-z0-9_.:-]. */
int stats_name_valid(const char *name);

#endif
