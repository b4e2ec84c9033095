/* stats_shm.c: the shared stats region, with real processes writing it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "baton.h"
#include "libbaton/stats_shm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct stats_region r;

static int setup(void **state)
{
    (void)state;
    r.fd = -1;
    return stats_create(&r, 64);
}

static int teardown(void **state)
{
    (void)state;
    stats_close(&r);
    return 0;
}

static void registers_finds_and_refuses(void **state)
{
    (void)state;
    int a = stats_register(&r, "http.requests", STATS_COUNTER, NULL, 0);
    assert_true(a >= 0);
    assert_int_equal(stats_register(&r, "http.requests", STATS_COUNTER, NULL, 0), a);
    assert_int_equal(stats_find(&r, "http.requests"), a);
    assert_int_equal(stats_find(&r, "nope"), -ENOENT);
    /* A type clash, bad names, bad bounds. */
    assert_int_equal(stats_register(&r, "http.requests", STATS_GAUGE, NULL, 0), -EEXIST);
    assert_int_equal(stats_register(&r, "", STATS_COUNTER, NULL, 0), -EINVAL);
    assert_int_equal(stats_register(&r, "has space", STATS_COUNTER, NULL, 0), -EINVAL);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(stats_register(&r, longname, STATS_COUNTER, NULL, 0), -ENAMETOOLONG);
    double down[] = { 2, 1 };
    assert_int_equal(stats_register(&r, "h", STATS_HISTOGRAM, down, 2), -EINVAL);
    double up[] = { 0.1, 1, 10 };
    int h = stats_register(&r, "latency", STATS_HISTOGRAM, up, 3);
    assert_true(h >= 0);
    double other[] = { 0.1, 1, 20 };
    assert_int_equal(stats_register(&r, "latency", STATS_HISTOGRAM, other, 3), -EEXIST);
}

static void fills_up_with_a_clear_error(void **state)
{
    (void)state;
    char name[32];
    int rc = 0, n;
    for (n = 0; n < 100 && rc >= 0; n++) {
        snprintf(name, sizeof name, "m%d", n);
        rc = stats_register(&r, name, STATS_COUNTER, NULL, 0);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(n, 65); /* capacity 64: the 65th has no room */
}

static void lanes_fold_and_counters_never_reset(void **state)
{
    (void)state;
    int i = stats_register(&r, "c", STATS_COUNTER, NULL, 0);
    int g = stats_register(&r, "g", STATS_GAUGE, NULL, 0);
    const struct stats_entry *c = stats_entry_at(&r, (uint32_t)i),
                             *ge = stats_entry_at(&r, (uint32_t)g);
    unsigned long expect = 0;
    for (uint32_t gen = 1; gen <= 20; gen++) {
        stats_assign_lane(&r, gen);
        unsigned lane = stats_lane_of(gen);
        assert_int_equal(stats_lane_generation(&r, lane), gen);
        __atomic_fetch_add(stats_lane(&r, c, lane), gen, __ATOMIC_RELAXED);
        __atomic_store_n(stats_lane(&r, ge, lane), 5, __ATOMIC_RELAXED);
        expect += gen;
        assert_true(stats_read(&r, c, -1, 0) == (double)expect);
        assert_true(stats_read(&r, c, (int)lane, 0) == (double)gen);
    }
    /* Gauges of generations whose lanes were reused are gone: 7 lanes live. */
    assert_true(stats_read(&r, ge, -1, 0) == 35.0);
}

/* A region as a later layout might write it: version 2, still usable by
 * version 1 code (compat_version 1), with larger entries and header. */
static void reads_and_writes_a_later_compatible_layout(void **state)
{
    (void)state;
    uint32_t cap = 16, hs = 8192, es = 512;
    uint64_t values = 64 * 1024, size = hs + (uint64_t)cap * es + values;
    int fd = memfd_create("later", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    struct stats_header h = { .magic = STATS_MAGIC,
                              .version = 2,
                              .compat_version = 1,
                              .header_size = hs,
                              .entry_size = es,
                              .capacity = cap,
                              .lanes = STATS_LANES,
                              .region_size = size,
                              .values_offset = hs + (uint64_t)cap * es,
                              .values_size = values };
    assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    struct stats_region later = { .fd = -1 };
    assert_int_equal(stats_attach(&later, fd), 0);
    int i = stats_register(&later, "old.reader", STATS_COUNTER, NULL, 0);
    assert_true(i >= 0);
    const struct stats_entry *e = stats_entry_at(&later, (uint32_t)i);
    __atomic_fetch_add(stats_lane(&later, e, 3), 5, __ATOMIC_RELAXED);
    assert_int_equal(stats_find(&later, "old.reader"), i);
    assert_true(stats_read(&later, e, -1, 0) == 5);
    /* The entry sits where the region's own entry size puts it. */
    assert_ptr_equal(e, (char *)later.base + hs + (size_t)i * es);
    /* A layout that version 1 would misread says so: refused. */
    later.hdr->compat_version = 2;
    struct stats_region again = { .fd = -1 };
    assert_int_equal(stats_attach(&again, fd), -EPROTO);
    stats_close(&later);
}

static void refuses_another_layout(void **state)
{
    (void)state;
    struct stats_region other = { .fd = -1 };
    assert_int_equal(stats_create(&other, 8), 0);
    other.hdr->compat_version = 99;
    struct stats_region again = { .fd = -1 };
    assert_int_equal(stats_attach(&again, other.fd), -EPROTO);
    other.hdr->magic = 0x1234;
    other.hdr->compat_version = STATS_VERSION;
    assert_int_equal(stats_attach(&again, other.fd), -EPROTO);
    other.hdr->magic = STATS_MAGIC;
    other.hdr->entry_size = 128; /* smaller than an entry: damaged */
    assert_int_equal(stats_attach(&again, other.fd), -EINVAL);
    other.hdr->entry_size = STATS_ENTRY_SIZE;
    other.hdr->capacity = 9; /* sizes no longer add up */
    assert_int_equal(stats_attach(&again, other.fd), -EINVAL);
    other.hdr->capacity = 8;
    assert_int_equal(stats_attach(&again, other.fd), 0);
    again.fd = -1; /* other owns the fd */
    stats_close(&again);
    stats_close(&other);
}

static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

/* A writer that died between claiming an entry and publishing it: the next
 * writer of that name takes it over at once; other names are not held up. */
static void takes_over_a_claim_of_a_dead_writer(void **state)
{
    (void)state;
    int i = stats_register(&r, "victim", STATS_COUNTER, NULL, 0);
    struct stats_entry *e = (struct stats_entry *)stats_entry_at(&r, (uint32_t)i);
    uint64_t ready = e->state;
    uint64_t hash = ready & 0xffffffffULL;
    e->state = (1ULL << 62) | ((uint64_t)dead_pid() << 32) | hash; /* CLAIMED by the dead */
    memset(e->name, 'X', 10);                                      /* half-written */
    assert_int_equal(stats_find(&r, "victim"), -ENOENT);           /* readers skip it */
    assert_null(stats_entry_at(&r, (uint32_t)i));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(stats_register(&r, "victim", STATS_COUNTER, NULL, 0), i);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 1);
    assert_string_equal(stats_entry_at(&r, (uint32_t)i)->name, "victim");
}

/* Writers SIGKILLed at random moments while they register and update, over
 * and over: afterwards every entry is whole, every name registers at once,
 * and no writer ever blocked another. */
static void survives_writers_killed_in_a_loop(void **state)
{
    (void)state;
    struct stats_region big = { .fd = -1 };
    assert_int_equal(stats_create(&big, 1024), 0);
    srand(42);
    for (int round = 0; round < 200; round++) {
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                char name[32];
                for (unsigned n = 0;; n++) {
                    snprintf(name, sizeof name, "w%u.m%u", (unsigned)k, n % 300);
                    int idx = stats_register(&big, name, STATS_COUNTER, NULL, 0);
                    if (idx < 0 && idx != -ENOSPC)
                        _exit(10 + (-idx % 100));
                    if (idx >= 0)
                        __atomic_fetch_add(stats_lane(&big, stats_entry_at(&big, (uint32_t)idx), 1),
                                           1, __ATOMIC_RELAXED);
                }
            }
        }
        usleep((useconds_t)(rand() % 2000));
        for (int k = 0; k < 2; k++) {
            kill(kids[k], SIGKILL);
            int st;
            waitpid(kids[k], &st, 0);
            assert_true(WIFSIGNALED(st)); /* none gave up with an error */
        }
    }
    /* Every entry a reader can see is whole. */
    unsigned ready = 0;
    for (uint32_t i = 0; i < big.hdr->capacity; i++) {
        const struct stats_entry *e = stats_entry_at(&big, i);
        if (!e)
            continue;
        ready++;
        unsigned k, n;
        assert_int_equal(sscanf(e->name, "w%u.m%u", &k, &n), 2);
        assert_true(k < 2 && n < 300);
        assert_int_equal(e->type, STATS_COUNTER);
    }
    assert_true(ready > 0);
    /* And every name registers (or is found) now, without waiting. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char name[32];
    for (unsigned k = 0; k < 2; k++)
        for (unsigned n = 0; n < 300; n++) {
            snprintf(name, sizeof name, "w%u.m%u", k, n);
            assert_true(stats_register(&big, name, STATS_COUNTER, NULL, 0) >= 0);
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    stats_close(&big);
}

static void app_api_writes_its_generation_lane(void **state)
{
    (void)state;
    char fd[16];
    snprintf(fd, sizeof fd, "%d", r.fd);
    setenv("BATON_STATS_FD", fd, 1);
    setenv("BATON_GENERATION", "9", 1);
    stats_assign_lane(&r, 9);
    struct baton_stats *s;
    assert_int_equal(baton_stats_open(&s), 0);
    baton_metric c, g, h;
    assert_int_equal(baton_counter(s, "req", &c), 0);
    assert_int_equal(baton_gauge(s, "conns", &g), 0);
    double bounds[] = { 1, 5 };
    assert_int_equal(baton_histogram(s, "lat", bounds, 2, &h), 0);
    assert_int_equal(baton_gauge(s, "req", &g), -EEXIST);
    assert_int_equal(baton_gauge(s, "conns", &g), 0);
    baton_add(&c, 3);
    baton_gauge_add(&g, 4);
    baton_gauge_add(&g, -1);
    baton_observe(&h, 0.5);
    baton_observe(&h, 3);
    baton_observe(&h, 100);
    const struct stats_entry *ce = stats_entry_at(&r, (uint32_t)stats_find(&r, "req"));
    const struct stats_entry *ge = stats_entry_at(&r, (uint32_t)stats_find(&r, "conns"));
    const struct stats_entry *he = stats_entry_at(&r, (uint32_t)stats_find(&r, "lat"));
    unsigned lane = stats_lane_of(9);
    assert_true(stats_read(&r, ce, (int)lane, 0) == 3);
    assert_true(stats_read(&r, ge, -1, 0) == 3);
    assert_true(stats_read(&r, he, -1, 0) == 1 && stats_read(&r, he, -1, 1) == 1 &&
                stats_read(&r, he, -1, 2) == 1 && stats_read(&r, he, -1, 3) == 103.5);
    baton_stats_close(s);
    unsetenv("BATON_STATS_FD");
    /* Outside baton: a private region, same calls. */
    assert_int_equal(baton_stats_open(&s), 1);
    assert_int_equal(baton_counter(s, "req", &c), 0);
    baton_add(&c, 1);
    baton_stats_close(s);
}

static void gradual_drain_window(void **state)
{
    (void)state;
    stats_assign_lane(&r, 3);
    unsigned lane = stats_lane_of(3);
    assert_true(stats_drain_progress(&r, lane, 5000) == 0);
    stats_set_drain(&r, 3, 1000, 3000);
    assert_true(stats_drain_progress(&r, lane, 999) == 0);
    assert_true(stats_drain_progress(&r, lane, 2000) == 0.5);
    assert_true(stats_drain_progress(&r, lane, 9000) == 1);
    stats_set_drain(&r, 4, 1000, 3000); /* not a generation with a lane: ignored */
    assert_true(stats_drain_progress(&r, stats_lane_of(4), 2000) == 0);
    stats_assign_lane(&r, 3 + STATS_LANES - 1); /* the lane goes to a new generation */
    assert_true(stats_drain_progress(&r, lane, 2000) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(registers_finds_and_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(fills_up_with_a_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(lanes_fold_and_counters_never_reset, setup, teardown),
        cmocka_unit_test(refuses_another_layout),
        cmocka_unit_test(reads_and_writes_a_later_compatible_layout),
        cmocka_unit_test_setup_teardown(takes_over_a_claim_of_a_dead_writer, setup, teardown),
        cmocka_unit_test(survives_writers_killed_in_a_loop),
        cmocka_unit_test_setup_teardown(app_api_writes_its_generation_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(gradual_drain_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
