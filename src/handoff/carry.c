/* carry.c: the carried state's document on its way (see carry.h). */
#include "handoff/carry.h"

#include "base/log.h"
#include "libbaton/shmfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int carry_to_memfd(const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    size_t n = strlen(text);
    /* Inherited: no CLOEXEC. Sealed where the host has seals; elsewhere
     * the reader copies it all before parsing, which is as good here: the
     * one other holder is the process that wrote it and then exec'd. */
    int r, fd = shmfd_create("baton-carry", 0, 0);
    if (fd < 0)
        r = fd;
    else if (n > CARRY_MAX)
        r = -E2BIG;
    else if ((r = write_all(fd, text, n)) == 0 &&
             (r = shmfd_seal(fd, SHMFD_SEAL_SIZE | SHMFD_SEAL_WRITE)) > 0)
        r = 0;
    free(text);
    if (r < 0) {
        if (fd >= 0)
            close(fd);
        return r;
    }
    return fd;
}

static int check_doc(json_t *doc, char *err, size_t errlen)
{
    const char *format = json_string_value(json_object_get(doc, "format"));
    json_t *v = json_object_get(doc, "version");
    if (!format || strcmp(format, CARRY_FORMAT) != 0 || !json_is_integer(v)) {
        snprintf(err, errlen, "not a carried state of baton's (format '%s')",
                 format ? format : "?");
        return -EINVAL;
    }
    json_int_t ver = json_integer_value(v);
    if (ver < CARRY_OLDEST || ver > CARRY_VERSION) {
        snprintf(err, errlen,
                 "carried state version %lld, written by baton %s: this binary reads versions %d "
                 "to %d",
                 (long long)ver, json_string_value(json_object_get(doc, "baton")) ?: "?",
                 CARRY_OLDEST, CARRY_VERSION);
        return -EPROTO;
    }
    return 0;
}

/* Reads what FD holds from its start, at most CARRY_MAX bytes, as JSON. */
static int read_doc(int fd, json_t **doc, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "carried state: %s", strerror(errno));
        return -errno;
    }
    if (st.st_size <= 0 || (unsigned long long)st.st_size > CARRY_MAX) {
        snprintf(err, errlen, "carried state of %lld bytes (at most %u)", (long long)st.st_size,
                 CARRY_MAX);
        return -E2BIG;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf)
        return -ENOMEM;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    json_error_t je;
    *doc = got == n ? json_loadb(buf, n, 0, &je) : NULL;
    free(buf);
    if (!*doc) {
        snprintf(err, errlen, "carried state: %s", got == n ? je.text : "short read");
        return -EINVAL;
    }
    int r = check_doc(*doc, err, errlen);
    if (r < 0) {
        json_decref(*doc);
        *doc = NULL;
    }
    return r;
}

int carry_read_fd(int fd, json_t **doc, char *err, size_t errlen)
{
    return read_doc(fd, doc, err, errlen);
}

int carry_write_file(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    int r = fd < 0 ? -errno : write_all(fd, text, strlen(text));
    if (fd >= 0 && close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

/* Opens PATH to read, if it is a regular file of ours with mode 0600. */
static int open_trusted(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    } else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077)) {
        snprintf(err, errlen, "%s: not a file of ours with mode 0600: not trusted", path);
        r = -EPERM;
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* The events file DOC names, folded into its runtime part (carry.h). */
static int read_events(json_t *doc, char *err, size_t errlen)
{
    const char *path = json_string_value(json_object_get(doc, "events_file"));
    json_t *rt = json_object_get(doc, "runtime");
    if (!path || !json_is_object(rt))
        return 0;
    int fd = open_trusted(path, err, errlen);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd; /* none written yet: no events */
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (r == 0 && (unsigned long long)st.st_size > CARRY_MAX) {
        snprintf(err, errlen, "%s: %lld bytes (at most %u)", path, (long long)st.st_size,
                 CARRY_MAX);
        r = -E2BIG;
    }
    if (r == 0 && !(buf = malloc((size_t)st.st_size + 1)))
        r = -ENOMEM;
    while (r == 0 && n < (size_t)st.st_size) {
        ssize_t got = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    /* The newest CARRY_EVENTS whole lines, oldest first: a ring of them. */
    json_t *ring[CARRY_EVENTS] = { 0 };
    size_t count = 0;
    for (char *line = buf, *end; r == 0 && line < buf + n; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + n - line));
        if (!end)
            break; /* cut short by a death: not an event */
        json_t *ev = json_loadb(line, (size_t)(end - line), 0, NULL);
        if (!json_is_object(ev) || !json_is_integer(json_object_get(ev, "seq"))) {
            json_decref(ev);
            continue;
        }
        json_decref(ring[count % CARRY_EVENTS]);
        ring[count++ % CARRY_EVENTS] = ev;
    }
    free(buf);
    json_t *events = json_array();
    size_t kept = count < CARRY_EVENTS ? count : CARRY_EVENTS;
    for (size_t i = count - kept; i < count; i++) {
        json_t *ev = ring[i % CARRY_EVENTS];
        if (i == count - kept)
            json_object_set_new(rt, "events_not_kept",
                                json_integer(json_integer_value(json_object_get(ev, "seq")) - 1));
        json_object_del(ev, "seq");
        json_array_append_new(events, ev);
    }
    json_object_set_new(rt, "events", events);
    return r;
}

int carry_read_file(const char *path, json_t **doc, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077)) {
        snprintf(err, errlen, "%s: not a file of ours with mode 0600: not trusted", path);
        r = -EPERM;
    }
    if (r == 0)
        r = read_doc(fd, doc, err, errlen);
    else if (r != -EPERM)
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    close(fd);
    char why[512];
    if (r == 0 && read_events(*doc, why, sizeof why) < 0)
        log_warn("the carried history is left out: %s", why);
    return r;
}

int carry_events_open(const char *path, int fresh)
{
    int fd = open(
        path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (fresh ? O_TRUNC : 0), 0600);
    /* Not a leak: the fd is the caller's (keeper_link.c closes it). */
    // cppcheck-suppress resourceLeak
    return fd < 0 ? -errno : fd;
}

int carry_events_append(int fd, const json_t *events, unsigned long long first)
{
    size_t len = 0, cap = 0, i;
    char *buf = NULL;
    json_t *ev;
    int r = 0;
    json_array_foreach(events, i, ev) {
        json_t *line = json_deep_copy(ev);
        if (!json_is_object(line)) {
            json_decref(line);
            continue;
        }
        json_object_set_new(line, "seq", json_integer((json_int_t)(first + i)));
        char *text = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        size_t n = text ? strlen(text) : 0;
        if (text && len + n + 1 > cap) {
            size_t want = (len + n + 1) * 2;
            char *more = realloc(buf, want);
            if (more) {
                buf = more;
                cap = want;
            }
        }
        if (!text || len + n + 1 > cap) {
            free(text);
            r = -ENOMEM;
            break;
        }
        memcpy(buf + len, text, n);
        buf[len + n] = '\n';
        len += n + 1;
        free(text);
    }
    /* One write: lines of one turn of the loop land whole or, cut by a
     * death, leave a last line without its newline that a reader skips. */
    if (r == 0 && len > 0)
        r = write_all(fd, buf, len);
    free(buf);
    return r;
}

int carry_int(const json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

static void add_fd(int *fds, size_t max, size_t *n, const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 3 && json_integer_value(v) < 1 << 20 &&
        *n < max)
        fds[(*n)++] = (int)json_integer_value(v);
}

size_t carry_fds(const json_t *doc, int *fds, size_t max)
{
    size_t n = 0, i;
    json_t *e;
    static const char *const single[] = { "notify", "control", "stats", "metrics", "staged" };
    for (size_t k = 0; k < sizeof single / sizeof single[0]; k++)
        add_fd(fds, max, &n, json_object_get(doc, single[k]));
    static const char *const lists[] = { "listeners", "fdstore", "pipes" };
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
        json_array_foreach(json_object_get(doc, lists[k]), i, e)
            add_fd(fds, max, &n, json_object_get(e, "fd"));
    json_array_foreach(json_object_get(json_object_get(doc, "steer"), "members"), i, e)
        add_fd(fds, max, &n, json_object_get(e, "fd"));
    add_fd(fds, max, &n, json_object_get(json_object_get(doc, "keeper"), "fd"));
    json_t *up = json_object_get(doc, "upgrade");
    add_fd(fds, max, &n, json_object_get(up, "client"));
    add_fd(fds, max, &n, json_object_get(up, "old_image"));
    return n;
}

void carry_events_path(const char *carry, char *events, size_t len)
{
    size_t n = strlen(carry);
    if (n > 6 && strcmp(carry + n - 6, ".carry") == 0)
        n -= 6;
    snprintf(events, len, "%.*s.events", (int)n, carry);
}

void carry_paths(const char *rundir, const char *name, const char *control, char *carry,
                 size_t carrylen, char *keeper, size_t keeperlen)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a of the control socket's path */
    for (const char *p = control; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(carry, carrylen, "%s/%s.%016llx.carry", rundir, name, (unsigned long long)h);
    snprintf(keeper, keeperlen, "%s/%s.%016llx.keeper", rundir, name, (unsigned long long)h);
}
