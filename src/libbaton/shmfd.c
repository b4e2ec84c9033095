/* shmfd.c: anonymous, sealable shared memory (see shmfd.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#endif
#include "shmfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* memfd and its seals came together (Linux 3.17, FreeBSD 13): headers that
 * lack either get the fallback only. */
#if defined(MFD_ALLOW_SEALING) && defined(F_ADD_SEALS) && defined(F_GET_SEALS)
#define HAVE_SEALS 1
#else
#define HAVE_SEALS 0
#endif

/* -1 not probed yet, 0 no seals here, 1 memfd with seals. Read and written
 * atomically: apps may call from any thread, and two probes agree. */
static int host_seals = -1;
static int forced;
static char host_why[96];

#if HAVE_SEALS
static int refused(int err)
{
    return err == ENOSYS || err == EPERM || err == EACCES || err == EINVAL || err == EOPNOTSUPP;
}

static int memfd(const char *name, int cloexec)
{
    int fd = memfd_create(name, MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0));
    return fd < 0 ? -errno : fd;
}
#endif

static int probe(void)
{
    int h = __atomic_load_n(&host_seals, __ATOMIC_ACQUIRE);
    if (h >= 0)
        return h;
#if HAVE_SEALS
    int fd = memfd("baton-probe", 1);
    if (fd >= 0) {
        close(fd);
        h = 1;
    } else {
        snprintf(host_why, sizeof host_why, "memfd_create: %s", strerror(-fd));
        h = 0;
    }
#else
    snprintf(host_why, sizeof host_why, "no memfd_create in this build's headers");
    h = 0;
#endif
    __atomic_store_n(&host_seals, h, __ATOMIC_RELEASE);
    return h;
}

int shmfd_host_seals(const char **how)
{
    int h = forced ? 0 : probe();
    if (how)
        *how = forced ? "forced (a test)" : h ? "" : host_why;
    return h;
}

void shmfd_force_fallback(int on)
{
    forced = on;
}

/* The fallback: a file of our own, created exclusively and unlinked before
 * anyone else may open it, in the first directory that takes it. /dev/shm
 * is memory (tmpfs); $TMPDIR and /tmp may be a disk, which the page cache
 * makes as fast until memory is short. */
static int unlinked_file(const char *name, int cloexec)
{
    static unsigned counter;
    const char *dirs[3] = { "/dev/shm", getenv("TMPDIR"), "/tmp" };
    int err = -ENOENT;
    for (size_t i = 0; i < 3; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        for (int tries = 0; tries < 16; tries++) {
            char path[512];
            unsigned n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
            if (snprintf(path, sizeof path, "%s/.%s-%ld-%u", dirs[i], name, (long)getpid(), n) >=
                (int)sizeof path) {
                err = -ENAMETOOLONG;
                break;
            }
            int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | (cloexec ? O_CLOEXEC : 0),
                          0600);
            if (fd < 0 && errno == EEXIST)
                continue; /* a leftover of a pid reused: another name */
            if (fd < 0) {
                err = -errno;
                break;
            }
            if (unlink(path) < 0) {
                err = -errno;
                close(fd);
                break;
            }
            return fd;
        }
    }
    return err;
}

int shmfd_create(const char *name, size_t size, int cloexec)
{
    int fd = -ENOSYS;
#if HAVE_SEALS
    if (!forced && probe()) {
        fd = memfd(name, cloexec);
        /* Refused now though the probe ran (a sandbox installed since):
         * the fallback serves all the same. */
        if (fd < 0 && !refused(-fd))
            return fd;
    }
#endif
#ifdef SHM_ANON
    /* FreeBSD before 13 (no memfd): shm_open(2)'s anonymous object, memory
     * no name reaches, made close-on-exec; no seals. */
    if (fd < 0) {
        fd = shm_open(SHM_ANON, O_RDWR | O_CREAT, 0600);
        if (fd < 0)
            fd = -errno;
        else if (!cloexec && fcntl(fd, F_SETFD, 0) < 0) {
            int r = -errno;
            close(fd);
            return r;
        }
    }
#endif
    if (fd < 0 && (fd = unlinked_file(name, cloexec)) < 0)
        return fd;
    if (ftruncate(fd, (off_t)size) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

int shmfd_seal(int fd, unsigned what)
{
#if HAVE_SEALS
    int now = shmfd_seals(fd);
    if (now == -ENOTSUP)
        return 0;
    if (now < 0)
        return now;
    int seals = F_SEAL_SEAL;
    if (what & SHMFD_SEAL_SIZE)
        seals |= F_SEAL_SHRINK | F_SEAL_GROW;
    if (what & SHMFD_SEAL_WRITE)
        seals |= F_SEAL_WRITE;
    if (fcntl(fd, F_ADD_SEALS, seals) < 0)
        return -errno;
    return 1;
#else
    (void)fd;
    (void)what;
    return 0;
#endif
}

int shmfd_seals(int fd)
{
#if HAVE_SEALS
    int s = fcntl(fd, F_GET_SEALS);
    /* EINVAL: a file of a file system without seals. A tmpfs file not
     * made by memfd_create (the fallback's in /dev/shm) answers
     * F_SEAL_SEAL alone: sealed against ever being sealed. */
    if (s < 0)
        return errno == EINVAL ? -ENOTSUP : -errno;
    if (s == F_SEAL_SEAL)
        return -ENOTSUP;
    return ((s & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW) ? SHMFD_SEAL_SIZE
                                                                                 : 0) |
           (s & F_SEAL_WRITE ? SHMFD_SEAL_WRITE : 0);
#else
    (void)fd;
    return -ENOTSUP;
#endif
}
