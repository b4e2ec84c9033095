#include "stats_shm.h"

#include "shmfd.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct stats_entry) <= STATS_ENTRY_SIZE, "entry too large");
_Static_assert(sizeof(struct stats_header) <= STATS_HEADER_SIZE, "header too large");
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0),
               "8-byte atomics must be lock-free to be shared between processes");

/* State word: tag in bits 62-63, claimer pid in bits 32-61, name hash in 0-31. */
#define TAG_CLAIMED 1ULL
#define TAG_READY 2ULL
#define STATE(tag, pid, hash) (((tag) << 62) | ((uint64_t)(pid) << 32) | (uint64_t)(hash))
#define STATE_TAG(s) ((s) >> 62)
#define STATE_PID(s) ((pid_t)(((s) >> 32) & 0x3fffffffULL))
#define STATE_HASH(s) ((uint32_t)(s))

#define CLAIM_WAIT_NS 1000000000LL

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int stats_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return -EINVAL;
    if (n >= STATS_NAME_MAX)
        return -ENAMETOOLONG;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return -EINVAL;
    }
    return 0;
}

static struct stats_entry *entry(const struct stats_region *r, uint32_t i)
{
    return (struct stats_entry *)((char *)r->entries + (size_t)i * r->entry_size);
}

unsigned stats_slots(const struct stats_entry *e)
{
    return e->type == STATS_HISTOGRAM ? e->nbuckets + 2 : 1;
}

/* Each lane on cache lines of its own: two generations updating the same
 * metric while they overlap (a restart under load) never false-share. */
static uint64_t lane_stride(unsigned slots)
{
    return ((uint64_t)slots * sizeof(uint64_t) + 63) & ~63ULL;
}

static uint64_t block_size(unsigned slots)
{
    return STATS_LANES * lane_stride(slots);
}

static int map(struct stats_region *r, int fd, size_t size, size_t header_size, size_t entry_size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    r->base = p;
    r->size = size;
    r->fd = fd;
    r->hdr = p;
    r->entry_size = entry_size;
    r->entries = (struct stats_entry *)((char *)p + header_size);
    return 0;
}

int stats_create(struct stats_region *r, uint32_t capacity)
{
    if (capacity == 0)
        capacity = STATS_DEFAULT_CAPACITY;
    if (capacity > STATS_MAX_CAPACITY)
        return -EINVAL;
    /* Room for every entry as a counter or gauge, plus histograms' extra. */
    uint64_t values = (uint64_t)capacity * block_size(1) * 2;
    uint64_t size = STATS_HEADER_SIZE + (uint64_t)capacity * STATS_ENTRY_SIZE + values;
    int fd = shmfd_create("baton-stats", (size_t)size, 1);
    if (fd < 0)
        return fd;
    /* Nobody may shrink it under another's mapping (SIGBUS) or grow it.
     * Where the host has no seals (shmfd.h) that is lost: see above. */
    int rc = shmfd_seal(fd, SHMFD_SEAL_SIZE);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if ((rc = map(r, fd, size, STATS_HEADER_SIZE, STATS_ENTRY_SIZE)) < 0) {
        close(fd);
        return rc;
    }
    struct stats_header *h = r->hdr;
    h->version = STATS_VERSION;
    h->compat_version = STATS_VERSION;
    h->header_size = STATS_HEADER_SIZE;
    h->entry_size = STATS_ENTRY_SIZE;
    h->capacity = capacity;
    h->lanes = STATS_LANES;
    h->region_size = size;
    h->values_offset = STATS_HEADER_SIZE + (uint64_t)capacity * STATS_ENTRY_SIZE;
    h->values_size = values;
    __atomic_store_n(&h->magic, STATS_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

int stats_attach(struct stats_region *r, int fd)
{
    struct stat st;
    struct stats_header h;
    if (fstat(fd, &st) < 0)
        return -errno;
    if ((size_t)st.st_size < sizeof h)
        return -EINVAL;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        return -EINVAL;
    if (h.magic != STATS_MAGIC || h.compat_version == 0 || h.compat_version > STATS_VERSION ||
        h.version < h.compat_version)
        return -EPROTO;
    /* Sizes may be larger than ours (a later layout appended fields), never smaller. */
    if (h.header_size < sizeof(struct stats_header) || h.header_size % 64 ||
        h.entry_size < sizeof(struct stats_entry) || h.entry_size % 64 || h.entry_size > 65536 ||
        h.lanes != STATS_LANES || h.capacity == 0 || h.capacity > STATS_MAX_CAPACITY ||
        h.region_size != (uint64_t)st.st_size ||
        h.values_offset != h.header_size + (uint64_t)h.capacity * h.entry_size ||
        h.values_offset + h.values_size != h.region_size)
        return -EINVAL;
    return map(r, fd, (size_t)st.st_size, h.header_size, h.entry_size);
}

void stats_close(struct stats_region *r)
{
    if (r->base)
        munmap(r->base, r->size);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int same_metric(const struct stats_entry *e, enum stats_type type, const double *bounds,
                       unsigned n)
{
    if (e->type != (uint32_t)type)
        return 0;
    if (type != STATS_HISTOGRAM)
        return 1;
    if (e->nbuckets != n)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (e->bounds[i] != bounds[i])
            return 0;
    return 1;
}

/* We hold the claim on E: fill it in, allocate its values, publish it. */
static int fill(struct stats_region *r, struct stats_entry *e, const char *name,
                enum stats_type type, const double *bounds, unsigned n, uint32_t hash)
{
    memset(e->name, 0, sizeof e->name);
    strcpy(e->name, name);
    e->type = type;
    e->nbuckets = type == STATS_HISTOGRAM ? n : 0;
    for (unsigned i = 0; i < e->nbuckets; i++)
        e->bounds[i] = bounds[i];
    memset(e->retired, 0, sizeof e->retired);
    uint64_t need = block_size(stats_slots(e));
    uint64_t off = __atomic_fetch_add(&r->hdr->values_used, need, __ATOMIC_RELAXED);
    if (off + need > r->hdr->values_size) {
        __atomic_store_n(&e->state, 0, __ATOMIC_RELEASE);
        return -ENOSPC;
    }
    e->values = r->hdr->values_offset + off;
    memset((char *)r->base + e->values, 0, need);
    /* Release: whoever sees READY sees the name, type and values above. */
    __atomic_store_n(&e->state, STATE(TAG_READY, 0, hash), __ATOMIC_RELEASE);
    return 0;
}

static int check_bounds(enum stats_type type, const double *bounds, unsigned n)
{
    if (type == STATS_COUNTER || type == STATS_GAUGE)
        return 0;
    if (type != STATS_HISTOGRAM || n == 0 || n > STATS_BUCKETS_MAX || !bounds)
        return -EINVAL;
    for (unsigned i = 1; i < n; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return -EINVAL;
    return 0;
}

int stats_register(struct stats_region *r, const char *name, enum stats_type type,
                   const double *bounds, unsigned nbuckets)
{
    int rc;
    if ((rc = stats_name_valid(name)) < 0 || (rc = check_bounds(type, bounds, nbuckets)) < 0)
        return rc;
    uint32_t hash = fnv1a(name), cap = r->hdr->capacity;
    pid_t me = getpid();
    for (uint32_t probe = 0; probe < cap; probe++) {
        uint32_t i = (hash + probe) % cap;
        struct stats_entry *e = entry(r, i);
        int64_t deadline = 0;
        for (;;) {
            uint64_t s = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
            if (s == 0) {
                uint64_t want = STATE(TAG_CLAIMED, me, hash);
                if (__atomic_compare_exchange_n(&e->state, &s, want, 0, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE))
                    return (rc = fill(r, e, name, type, bounds, nbuckets, hash)) < 0 ? rc : (int)i;
                continue;
            }
            if (STATE_HASH(s) != hash)
                break; /* another name lives (or is being born) here */
            if (STATE_TAG(s) == TAG_READY) {
                if (strncmp(e->name, name, STATS_NAME_MAX) != 0)
                    break;
                return same_metric(e, type, bounds, nbuckets) ? (int)i : -EEXIST;
            }
            /* Claimed for a name with our hash: wait for it, unless the
             * claimer died mid-way, in which case it is ours to finish. */
            pid_t owner = STATE_PID(s);
            if (owner != me && kill(owner, 0) < 0 && errno == ESRCH) {
                uint64_t want = STATE(TAG_CLAIMED, me, hash);
                if (__atomic_compare_exchange_n(&e->state, &s, want, 0, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE))
                    return (rc = fill(r, e, name, type, bounds, nbuckets, hash)) < 0 ? rc : (int)i;
                continue;
            }
            if (deadline == 0)
                deadline = now_ns() + CLAIM_WAIT_NS;
            else if (now_ns() > deadline)
                return -EBUSY;
            sched_yield();
        }
    }
    return -ENOSPC;
}

const struct stats_entry *stats_entry_at(const struct stats_region *r, uint32_t index)
{
    if (index >= r->hdr->capacity)
        return NULL;
    const struct stats_entry *e = entry(r, index);
    uint64_t s = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
    if (STATE_TAG(s) != TAG_READY)
        return NULL;
    /* Apps share this memory: check what we are about to follow. */
    if ((e->type != STATS_COUNTER && e->type != STATS_GAUGE && e->type != STATS_HISTOGRAM) ||
        e->nbuckets > STATS_BUCKETS_MAX || memchr(e->name, '\0', STATS_NAME_MAX) == NULL ||
        e->values < r->hdr->values_offset || e->values + block_size(stats_slots(e)) > r->size)
        return NULL;
    return e;
}

int stats_find(const struct stats_region *r, const char *name)
{
    if (stats_name_valid(name) < 0)
        return -ENOENT;
    uint32_t hash = fnv1a(name), cap = r->hdr->capacity;
    for (uint32_t probe = 0; probe < cap; probe++) {
        uint32_t i = (hash + probe) % cap;
        const struct stats_entry *e = entry(r, i);
        uint64_t s = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
        if (s == 0)
            return -ENOENT;
        if (STATE_TAG(s) == TAG_READY && STATE_HASH(s) == hash && stats_entry_at(r, i) &&
            strcmp(e->name, name) == 0)
            return (int)i;
    }
    return -ENOENT;
}

uint64_t *stats_lane(const struct stats_region *r, const struct stats_entry *e, unsigned lane)
{
    return (uint64_t *)((char *)r->base + e->values + lane * lane_stride(stats_slots(e)));
}

unsigned stats_lane_of(uint32_t generation)
{
    return generation == 0 ? 0 : 1 + (generation - 1) % (STATS_LANES - 1);
}

static double as_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static uint64_t as_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static int is_sum_slot(const struct stats_entry *e, unsigned slot)
{
    return e->type == STATS_HISTOGRAM && slot == e->nbuckets + 1;
}

void stats_assign_lane(struct stats_region *r, uint32_t generation)
{
    unsigned lane = stats_lane_of(generation);
    if (lane == 0 || r->hdr->lane_generation[lane] == generation)
        return;
    for (uint32_t i = 0; i < r->hdr->capacity; i++) {
        struct stats_entry *e = (struct stats_entry *)stats_entry_at(r, i);
        if (!e)
            continue;
        uint64_t *v = stats_lane(r, e, lane);
        for (unsigned k = 0; k < stats_slots(e); k++) {
            uint64_t old = __atomic_exchange_n(&v[k], 0, __ATOMIC_RELAXED);
            if (e->type == STATS_GAUGE)
                continue; /* a gauge of a gone generation is no longer true */
            if (is_sum_slot(e, k))
                e->retired[k] = as_bits(as_double(e->retired[k]) + as_double(old));
            else
                e->retired[k] += old;
        }
    }
    __atomic_store_n(&r->hdr->drain_start_ns[lane], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->drain_end_ns[lane], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->lane_generation[lane], generation, __ATOMIC_RELEASE);
}

void stats_set_drain(struct stats_region *r, uint32_t generation, uint64_t start_ns,
                     uint64_t end_ns)
{
    unsigned lane = stats_lane_of(generation);
    if (lane == 0 || stats_lane_generation(r, lane) != generation)
        return;
    __atomic_store_n(&r->hdr->drain_end_ns[lane], end_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->drain_start_ns[lane], start_ns, __ATOMIC_RELEASE);
}

double stats_drain_progress(const struct stats_region *r, unsigned lane, uint64_t now_ns)
{
    if (lane >= STATS_LANES)
        return 0;
    uint64_t start = __atomic_load_n(&r->hdr->drain_start_ns[lane], __ATOMIC_ACQUIRE);
    uint64_t end = __atomic_load_n(&r->hdr->drain_end_ns[lane], __ATOMIC_RELAXED);
    if (start == 0 || now_ns <= start)
        return 0;
    if (end <= start || now_ns >= end)
        return 1;
    return (double)(now_ns - start) / (double)(end - start);
}

uint32_t stats_lane_generation(const struct stats_region *r, unsigned lane)
{
    return lane < STATS_LANES ? __atomic_load_n(&r->hdr->lane_generation[lane], __ATOMIC_ACQUIRE)
                              : 0;
}

static double slot_value(const struct stats_entry *e, uint64_t raw, unsigned slot)
{
    if (is_sum_slot(e, slot))
        return as_double(raw);
    if (e->type == STATS_GAUGE)
        return (double)(int64_t)raw;
    return (double)raw;
}

double stats_read(const struct stats_region *r, const struct stats_entry *e, int lane,
                  unsigned slot)
{
    if (slot >= stats_slots(e))
        return 0;
    if (lane >= 0)
        return slot_value(
            e, __atomic_load_n(&stats_lane(r, e, (unsigned)lane)[slot], __ATOMIC_RELAXED), slot);
    double total = e->type == STATS_GAUGE ? 0 : slot_value(e, e->retired[slot], slot);
    for (unsigned l = 0; l < STATS_LANES; l++)
        total += slot_value(e, __atomic_load_n(&stats_lane(r, e, l)[slot], __ATOMIC_RELAXED), slot);
    return total;
}
