/* state_blob.c: the state blob layout (see state_blob.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_POPULATE */
#endif
#include "state_blob.h"

#include "shmfd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Linux's MAP_POPULATE is FreeBSD's MAP_PREFAULT_READ: every page mapped
 * in the one call. */
#if !defined(MAP_POPULATE) && defined(MAP_PREFAULT_READ)
#define MAP_POPULATE MAP_PREFAULT_READ
#endif

/* --- CRC-32C --------------------------------------------------------------
 * Castagnoli, reflected, as in iSCSI and ext4: chosen because x86-64 (SSE4.2)
 * computes it in hardware, several GB/s, so checking a gigabyte costs a
 * fraction of a second. Elsewhere a slicing-by-8 table does it in software. */

#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t len)
{
    pthread_once(&crc_once, crc_init);
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
              crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
              crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
              crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t len)
{
    uint64_t c = crc;
    while (len && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}

static int have_hw(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
    return crc_soft(crc, p, len);
}

static int have_hw(void)
{
    return 0;
}
#endif

uint32_t state_crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc = ~crc;
    crc = have_hw() ? crc_hw(crc, buf, len) : crc_soft(crc, buf, len);
    return ~crc;
}

/* --- writing --------------------------------------------------------------- */

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fill_header(struct state_blob_header *h, const void *payload, size_t len,
                        uint32_t schema, uint32_t generation)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, STATE_BLOB_MAGIC, sizeof h->magic);
    h->layout = STATE_BLOB_LAYOUT;
    h->header_size = STATE_BLOB_HEADER_SIZE;
    h->length = len;
    h->schema = schema;
    h->checksum = state_crc32c(0, payload, len);
    h->generation = generation;
    h->created_ns = realtime_ns();
    h->header_checksum = state_crc32c(0, h, sizeof *h);
}

/* 0 sealed, or left unsealed on a host without seals (shmfd.h): readers
 * there check it whole on a copy of their own (state_blob_open). */
static int seal(int fd)
{
    int r = shmfd_seal(fd, SHMFD_SEAL_SIZE | SHMFD_SEAL_WRITE);
    return r < 0 ? r : 0;
}

static int new_memfd(size_t total)
{
    return shmfd_create("baton-state", total, 1);
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

int state_blob_create(const void *data, size_t len, uint32_t schema, uint32_t generation)
{
    if (len > SIZE_MAX - STATE_BLOB_HEADER_SIZE || (len && !data))
        return -EINVAL;
    int fd = new_memfd(STATE_BLOB_HEADER_SIZE + len), r;
    if (fd < 0)
        return fd;
    struct state_blob_header h;
    fill_header(&h, data, len, schema, generation);
    if ((r = write_all(fd, &h, sizeof h, 0)) < 0 ||
        (r = write_all(fd, data, len, STATE_BLOB_HEADER_SIZE)) < 0 || (r = seal(fd)) < 0) {
        close(fd);
        return r;
    }
    return fd;
}

int state_blob_begin(size_t len, void **payload, int *fd)
{
    if (len > SIZE_MAX - STATE_BLOB_HEADER_SIZE)
        return -EINVAL;
    int f = new_memfd(STATE_BLOB_HEADER_SIZE + len);
    if (f < 0)
        return f;
    void *map = mmap(NULL, STATE_BLOB_HEADER_SIZE + len, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (map == MAP_FAILED) {
        int r = -errno;
        close(f);
        return r;
    }
    /* The caller unmaps it (state_blob_commit/abort: from the payload back
     * to the header), so the mapping does not leak here. */
    *payload = (char *)map + STATE_BLOB_HEADER_SIZE;
    *fd = f;
    // cppcheck-suppress memleak
    return 0;
}

int state_blob_seal(int fd, void *payload, size_t len, uint32_t schema, uint32_t generation)
{
    char *map = (char *)payload - STATE_BLOB_HEADER_SIZE;
    struct state_blob_header h;
    fill_header(&h, payload, len, schema, generation);
    memcpy(map, &h, sizeof h);
    /* F_SEAL_WRITE fails with EBUSY while a writable shared mapping exists. */
    int r = munmap(map, STATE_BLOB_HEADER_SIZE + len) < 0 ? -errno : seal(fd);
    if (r < 0)
        close(fd);
    return r;
}

/* --- reading --------------------------------------------------------------- */

#define SEALS_REQUIRED (SHMFD_SEAL_SIZE | SHMFD_SEAL_WRITE)

#define FAIL(code, ...)                     \
    do {                                    \
        snprintf(err, errlen, __VA_ARGS__); \
        r = (code);                         \
        goto fail;                          \
    } while (0)

/* CRC-32C of LEN bytes of FD from OFF, read in chunks: through a small
 * buffer that stays in cache, three times faster than through a mapping of
 * 4 KiB shared-memory pages (whose TLB misses dominate). */
static int crc_of_file(int fd, off_t off, uint64_t len, uint32_t *out)
{
    enum { CHUNK = 256 << 10 }; /* fits in L2 */
    char *buf = malloc(len < CHUNK ? (size_t)len + 1 : CHUNK);
    uint32_t crc = 0;
    if (!buf)
        return -ENOMEM;
    while (len > 0) {
        ssize_t n = pread(fd, buf, len < CHUNK ? (size_t)len : CHUNK, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return n < 0 ? -errno : -ENODATA;
        }
        crc = state_crc32c(crc, buf, (size_t)n);
        off += n;
        len -= (uint64_t)n;
    }
    free(buf);
    *out = crc;
    return 0;
}

/* Copies LEN bytes of FD into private memory at *OUT (read-only once
 * filled), then checks that the copy holds header H as read before and a
 * payload whose checksum is H's. Returns 0 or a negative errno, the reason
 * in ERR. */
static int copy_checked(int fd, size_t len, const struct state_blob_header *h, void **out,
                        char *err, size_t errlen)
{
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "mmap: %s", strerror(errno));
        return -errno;
    }
    int r = 0;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, m + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -ENODATA;
            snprintf(err, errlen, "cannot read the blob: %s",
                     n < 0 ? strerror(errno) : "it shrank while read");
            break;
        }
        got += (size_t)n;
    }
    if (r == 0 && memcmp(m, h, sizeof *h) != 0) {
        r = -EBADMSG;
        snprintf(err, errlen, "header changed while read (an unsealed blob)");
    }
    uint32_t sum;
    if (r == 0 && (sum = state_crc32c(0, m + h->header_size, h->length)) != h->checksum) {
        r = -EILSEQ;
        snprintf(err, errlen, "checksum mismatch (stored %08x, computed %08x)", h->checksum, sum);
    }
    if (r == 0 && mprotect(m, len, PROT_READ) < 0) {
        r = -errno;
        snprintf(err, errlen, "mprotect: %s", strerror(errno));
    }
    if (r < 0) {
        munmap(m, len);
        return r;
    }
    *out = m;
    return 0;
}

int state_blob_open(int fd, uint64_t max, int flags, struct state_blob *b, char *err, size_t errlen)
{
    int verify = flags & STATE_BLOB_VERIFY;
    int r;
    struct stat st;
    void *map = MAP_FAILED;
    size_t map_len = 0;
    memset(b, 0, sizeof *b);

    /* Unsealed memory is taken only where the host has no seals: there a
     * sender could not have sealed it. */
    int seals = shmfd_seals(fd), copy = 0;
    if (seals == -ENOTSUP && !shmfd_host_seals(NULL))
        copy = 1;
    else if (seals < 0)
        FAIL(-EPERM, "not a memfd that can be sealed (%s)", strerror(-seals));
    else if ((seals & SEALS_REQUIRED) != SEALS_REQUIRED)
        FAIL(-EPERM, "memfd is not sealed against writes, growing and shrinking "
                     "(F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK)");
    if (fstat(fd, &st) < 0)
        FAIL(-errno, "fstat: %s", strerror(errno));
    if ((uint64_t)st.st_size < STATE_BLOB_HEADER_SIZE)
        FAIL(-ENODATA, "truncated: %lld bytes, shorter than the %d-byte header",
             (long long)st.st_size, STATE_BLOB_HEADER_SIZE);
    map_len = (size_t)st.st_size;

    struct state_blob_header h;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        FAIL(-EIO, "cannot read the header: %s", strerror(errno));
    uint32_t want = h.header_checksum;
    h.header_checksum = 0;
    if (memcmp(h.magic, STATE_BLOB_MAGIC, sizeof h.magic) != 0)
        FAIL(-EBADMSG, "not a baton state blob (bad magic)");
    if (state_crc32c(0, &h, sizeof h) != want)
        FAIL(-EBADMSG, "header checksum mismatch");
    if (h.layout < 1 || h.header_size < STATE_BLOB_HEADER_SIZE || h.header_size > map_len)
        FAIL(-EBADMSG, "unsupported blob layout %u (header %u bytes)", h.layout, h.header_size);
    if (h.length > max)
        FAIL(-E2BIG, "%llu bytes, over the limit of %llu", (unsigned long long)h.length,
             (unsigned long long)max);
    if (h.length > map_len - h.header_size)
        FAIL(-ENODATA, "truncated: header says %llu bytes, the memfd holds %llu",
             (unsigned long long)h.length, (unsigned long long)(map_len - h.header_size));
    /* A memfd larger than the blob it holds (sparse, say) is refused before
     * anything of it is read or mapped. */
    if (map_len - h.header_size > max)
        FAIL(-E2BIG, "the memfd holds %llu bytes, over the limit of %llu",
             (unsigned long long)(map_len - h.header_size), (unsigned long long)max);
    if (copy) {
        /* Nothing keeps its bytes as they are: every check runs on a
         * private copy, which the caller then reads, so what was checked
         * is what it gets. */
        h.header_checksum = want;
        if ((r = copy_checked(fd, map_len, &h, &map, err, errlen)) < 0)
            goto fail;
        *b = (struct state_blob){ .map = map,
                                  .map_len = map_len,
                                  .data = (const char *)map + h.header_size,
                                  .length = h.length,
                                  .schema = h.schema,
                                  .generation = h.generation,
                                  .created_ns = h.created_ns };
        return 0;
    }
    if (verify) {
        uint32_t sum = 0;
        if ((r = crc_of_file(fd, h.header_size, h.length, &sum)) < 0)
            FAIL(r, "cannot read the payload: %s", strerror(-r));
        if (sum != h.checksum)
            FAIL(-EILSEQ, "checksum mismatch (stored %08x, computed %08x)", h.checksum, sum);
    }
    /* A reader that will use every byte is better off with one call that
     * maps every page than with a fault per page. */
    map = mmap(NULL, map_len, PROT_READ,
               MAP_SHARED | (flags & STATE_BLOB_POPULATE ? MAP_POPULATE : 0), fd, 0);
    if (map == MAP_FAILED)
        FAIL(-errno, "mmap: %s", strerror(errno));
    *b = (struct state_blob){ .map = map,
                              .map_len = map_len,
                              .data = (const char *)map + h.header_size,
                              .length = h.length,
                              .schema = h.schema,
                              .generation = h.generation,
                              .created_ns = h.created_ns };
    return 0;
fail:
    return r;
}

void state_blob_close(struct state_blob *b)
{
    if (b->map)
        munmap((void *)b->map, b->map_len);
    memset(b, 0, sizeof *b);
}
