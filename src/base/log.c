#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
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
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
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
    char when[40], out[9216];
    timestamp(when, sizeof when);
    int n;
    if (format == LOG_FORMAT_JSON) {
        char esc[8192];
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
