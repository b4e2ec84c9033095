#ifndef BATON_CLOCK_H
#define BATON_CLOCK_H

/* The two clocks the supervisor reads. Event times, timers and every
 * `now` the runtime sees are the loop's monotonic seconds (libuv's
 * CLOCK_MONOTONIC, as libbaton reads it too); what people read (events,
 * logs, metrics) is unix seconds. */

#include <time.h>
#include <uv.h>

static inline double clock_mono(void)
{
    return (double)uv_hrtime() / 1e9;
}

static inline double clock_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
