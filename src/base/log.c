#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_INFO;
static const char *const names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
    current = level;
}
enum log_level log_get_level(void)
{
    return current;
}

const char *log_level_name(enum log_level level)
{
    return level <= LOG_DEBUG ? names[level] : "info";
}

static log_tap_fn tap;
static void *tap_ctx;

void log_set_tap(log_tap_fn fn, void *ctx)
{
    tap = fn;
    tap_ctx = ctx;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i <= LOG_DEBUG; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -EINVAL;
}

static enum log_format format = LOG_FORMAT_TEXT;

void log_set_format(enum log_format f)
{
    format = f;
}

int log_format_parse(const char *name)
{
    if (strcmp(name, "text") == 0)
        return LOG_FORMAT_TEXT;
    if (strcmp(name, "json") == 0)
        return LOG_FORMAT_JSON;
    return -EINVAL;
}

/* "2026-11-24T17:10:00.123Z": dated, UTC, to the millisecond. */
static size_t timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    return n + (size_t)snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* TEXT as a JSON string's contents (without quotes) into BUF. */
static size_t json_escape(char *buf, size_t len, const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 7 < len; p++) {
        if (*p == '"' || *p == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(buf + n, len - n, "\\u%04x", *p);
        } else {
            buf[n++] = (char)*p;
        }
    }
    buf[n] = '\0';
    return n;
}

/* The writer (log_async_start): a thread that writes what the loop
 * queued, so a reader that stalls holds up the thread, never the loop.
 * A line that does not fit in the queue is dropped and counted; the count
 * is written as a line of its own once the reader takes more. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t more, less;
    char *buf; /* a ring of LOG_QUEUE_BYTES */
    size_t head, len;
    unsigned long dropped;
    pid_t owner; /* 0: no writer; another pid (a forked child): write at once */
} q = { .lock = PTHREAD_MUTEX_INITIALIZER,
        .more = PTHREAD_COND_INITIALIZER,
        .less = PTHREAD_COND_INITIALIZER };

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *writer(void *arg)
{
    (void)arg;
    static char chunk[65536];
    pthread_mutex_lock(&q.lock);
    for (;;) {
        while (q.len == 0 && q.dropped == 0)
            pthread_cond_wait(&q.more, &q.lock);
        size_t n = q.len < sizeof chunk ? q.len : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = q.buf[(q.head + i) % LOG_QUEUE_BYTES];
        q.head = (q.head + n) % LOG_QUEUE_BYTES;
        q.len -= n;
        unsigned long dropped = q.dropped;
        q.dropped = 0;
        pthread_mutex_unlock(&q.lock);
        write_all(chunk, n);
        if (dropped) {
            char when[40], note[256];
            struct timespec ts;
            struct tm tm;
            clock_gettime(CLOCK_REALTIME, &ts);
            gmtime_r(&ts.tv_sec, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
            int k = snprintf(note, sizeof note,
                             format == LOG_FORMAT_JSON
                                 ? "{\"time\":\"%s.%03dZ\",\"pid\":%d,\"level\":\"warn\","
                                   "\"msg\":\"%lu line(s) of output dropped: the reader of "
                                   "stderr did not keep up\"}\n"
                                 : "%s.%03dZ baton[%d] warn: %lu line(s) of output dropped: the "
                                   "reader of stderr did not keep up\n",
                             when, (int)(ts.tv_nsec / 1000000) % 1000, (int)getpid(), dropped);
            if (k > 0)
                write_all(note, (size_t)k < sizeof note ? (size_t)k : sizeof note - 1);
        }
        pthread_mutex_lock(&q.lock);
        pthread_cond_broadcast(&q.less);
    }
    return NULL;
}

int log_async_start(void)
{
    if (q.owner)
        return 0;
    q.buf = malloc(LOG_QUEUE_BYTES);
    if (!q.buf)
        return -ENOMEM;
    /* Signals are the loop's: the writer takes none. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int r = pthread_create(&t, NULL, writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        free(q.buf);
        q.buf = NULL;
        return -r;
    }
    pthread_detach(t);
    q.owner = getpid();
    return 0;
}

unsigned long log_async_flush(int ms)
{
    if (q.owner != getpid())
        return 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&q.lock);
    while (q.len > 0 && pthread_cond_timedwait(&q.less, &q.lock, &until) == 0)
        ;
    unsigned long left = q.len;
    pthread_mutex_unlock(&q.lock);
    return left;
}

/* One buffer, one write: lines from the supervisor and its children
 * interleave on a shared stderr, but never mid-line. OUT holds N bytes as
 * snprintf counted them into CAP: a line cut short keeps its newline. */
static void emit(char *out, size_t cap, int n)
{
    if (n < 0)
        return;
    if ((size_t)n > cap - 1) {
        n = (int)cap - 1;
        out[n - 1] = '\n';
    }
    /* A forked child (the writer is not there) writes itself. */
    if (q.owner != getpid()) {
        write_all(out, (size_t)n);
        return;
    }
    pthread_mutex_lock(&q.lock);
    if (q.len + (size_t)n > LOG_QUEUE_BYTES) {
        q.dropped++;
    } else {
        for (size_t i = 0; i < (size_t)n; i++)
            q.buf[(q.head + q.len + i) % LOG_QUEUE_BYTES] = out[i];
        q.len += (size_t)n;
    }
    pthread_cond_signal(&q.more);
    pthread_mutex_unlock(&q.lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static int tapping; /* the tap's own messages are not tapped */
    int to_tap = tap && level <= LOG_INFO && !tapping;
    if (level > current && !to_tap)
        return;
    char msg[2048], when[40], out[4608];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (to_tap) {
        tapping = 1;
        tap(tap_ctx, level, msg);
        tapping = 0;
    }
    if (level > current)
        return;
    timestamp(when, sizeof when);
    int n;
    if (format == LOG_FORMAT_JSON) {
        char esc[4096];
        json_escape(esc, sizeof esc, msg);
        n = snprintf(out, sizeof out,
                     "{\"time\":\"%s\",\"pid\":%d,\"level\":\"%s\",\"msg\":\"%s\"}\n", when,
                     (int)getpid(), names[level], esc);
    } else {
        n = snprintf(out, sizeof out, "%s baton[%d] %s: %s\n", when, (int)getpid(), names[level],
                     msg);
    }
    emit(out, sizeof out, n);
}

void log_app_line(unsigned generation, const char *stream, const char *line)
{
    /* A sanitized line is up to 4 x OUTPUT_LINE_MAX (sanitize.h), twice
     * that once JSON-escaped; static: one thread writes app lines. */
    static char out[36864 + 256];
    char when[40];
    timestamp(when, sizeof when);
    int n;
    if (format == LOG_FORMAT_JSON) {
        static char esc[36864];
        json_escape(esc, sizeof esc, line);
        n = snprintf(out, sizeof out,
                     "{\"time\":\"%s\",\"generation\":%u,\"stream\":\"%s\",\"line\":\"%s\"}\n",
                     when, generation, stream, esc);
    } else {
        n = snprintf(out, sizeof out, "%s gen %u %s| %s\n", when, generation,
                     strcmp(stream, "stdout") == 0 ? "out" : "err", line);
    }
    emit(out, sizeof out, n);
}
