/* carry.c: the carried state's document on its way (see carry.h). */
#include "handoff/carry.h"

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
    add_fd(fds, max, &n, json_object_get(json_object_get(doc, "keeper"), "fd"));
    json_t *up = json_object_get(doc, "upgrade");
    add_fd(fds, max, &n, json_object_get(up, "client"));
    add_fd(fds, max, &n, json_object_get(up, "old_image"));
    return n;
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
