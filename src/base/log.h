#ifndef BATON_LOG_H
#define BATON_LOG_H

/* Every message the supervisor prints goes through these macros, so each has
 * a level and one shape on stderr: "2026-11-24T17:10:00.123Z baton[PID]
 * LEVEL: message" (UTC), or with LOG_FORMAT_JSON one object a line,
 * {"time","pid","level","msg"}. What generations print goes through
 * log_app_line: "TIME gen N out| line", or {"time","generation","stream",
 * "line"}. */

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_parse(const char *name); /* -EINVAL for an unknown name */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };
void log_set_format(enum log_format f);
int log_format_parse(const char *name); /* -EINVAL for an unknown name */
void log_app_line(unsigned generation, const char *stream, const char *line);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *log_level_name(enum log_level level);

/* One listener may tap the supervisor's own messages up to LOG_INFO,
 * whatever the level printed: the control socket streams them to a
 * `baton restart` that asked for its progress. A tap that logs is not
 * called again from inside itself. NULL removes it. */
typedef void (*log_tap_fn)(void *ctx, enum log_level level, const char *msg);
void log_set_tap(log_tap_fn fn, void *ctx);

/* The supervisor's stderr never holds up its loop: from log_async_start
 * on, every line (its own and its apps') is queued, up to LOG_QUEUE_BYTES,
 * and a thread writes them; when the reader stalls and the queue is full,
 * lines are dropped, counted, and the count is written as a warning once
 * the reader takes more. A forked child writes at once. Returns 0 or a
 * negative errno (then every write is direct, as before). */
#define LOG_QUEUE_BYTES (1 << 20)
int log_async_start(void);
/* Waits up to MS milliseconds for the queue to be written (before an
 * exec or an exit). Returns how many bytes are left in it. */
unsigned long log_async_flush(int ms);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
