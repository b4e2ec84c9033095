#ifndef BATON_SHMFD_H
#define BATON_SHMFD_H

/* Anonymous shared memory to pass between processes as an fd: the stats
 * region, state blobs, the carried state. Here in libbaton, not in os/,
 * because apps link it and libbaton depends on libc alone.
 *
 * The best a host gives is a memfd that can be sealed (Linux 3.17,
 * FreeBSD 13): seals make its size, or its bytes too, fixed for every
 * process that holds it, so a receiver checks once and trusts what it
 * maps. Where memfd_create is refused (an older kernel: ENOSYS; a sandbox:
 * EPERM, EACCES; EINVAL for the sealing flag) the memory is a file created
 * 0600 with O_EXCL in /dev/shm, $TMPDIR or /tmp and unlinked at once
 * (FreeBSD 12: shm_open(SHM_ANON) first, anonymous memory): the same
 * sharing, no seals. What each user of it checks without seals
 * is in its own header (state_blob.h: size and checksum on a private
 * copy; stats_shm.h: the size, once). */

#include <stddef.h>

#define SHMFD_SEAL_SIZE 1  /* neither grows nor shrinks */
#define SHMFD_SEAL_WRITE 2 /* its bytes never change again */

/* A new shared-memory fd of SIZE bytes (zeros), close-on-exec when
 * CLOEXEC. NAME (a short word) shows in /proc/PID/fd. Returns the fd or a
 * negative errno. */
int shmfd_create(const char *name, size_t size, int cloexec);

/* Seals FD with WHAT (SHMFD_SEAL_* bits), and against further seals.
 * SHMFD_SEAL_WRITE fails with -EBUSY while a writable shared mapping of it
 * exists. Returns 1 once sealed, 0 when FD is memory that cannot hold
 * seals (the fallback: nothing was enforced), or a negative errno. */
int shmfd_seal(int fd, unsigned what);

/* The SHMFD_SEAL_* bits FD holds (0: none yet), or -ENOTSUP when FD cannot
 * hold seals (not a memfd, or one sealed against sealing alone), or another
 * negative errno. */
int shmfd_seals(int fd);

/* Whether this host gives sealable memory: 1 yes, 0 no (shmfd_create then
 * falls back, and *HOW, when not NULL, says why). Probed once. */
int shmfd_host_seals(const char **how);

/* For tests: 1 makes shmfd_create skip memfd and take the fallback on any
 * kernel, and shmfd_host_seals answer 0; 0 restores the probe. */
void shmfd_force_fallback(int on);

#endif
