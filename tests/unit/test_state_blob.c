/* state_blob.c: the blob layout, its checks, and libbaton's save/load over
 * a real notify socket and real memfds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "baton.h"
#include "libbaton/shmfd.h"
#include "libbaton/state_blob.h"
#include "libbaton/stats_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void crc32c_matches_the_standard_check_value(void **state)
{
    (void)state;
    /* RFC 3720 (iSCSI) B.4 and every CRC catalogue: "123456789" -> e3069283. */
    assert_int_equal(state_crc32c(0, "123456789", 9), 0xe3069283u);
    /* Incremental equals one shot, across odd lengths and alignments. */
    char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 7 + 3);
    uint32_t whole = state_crc32c(0, buf, sizeof buf);
    uint32_t part = state_crc32c(state_crc32c(0, buf, 13), buf + 13, sizeof buf - 13);
    assert_int_equal(whole, part);
    assert_int_equal(state_crc32c(0, "", 0), 0);
}

static void round_trip(void **state)
{
    (void)state;
    const char text[] = "session-a 12\nsession-b 3\n";
    int fd = state_blob_create(text, sizeof text - 1, 7, 42);
    assert_true(fd >= 0);
    struct state_blob b;
    char err[256] = "";
    assert_int_equal(state_blob_open(fd, 1 << 20, STATE_BLOB_VERIFY, &b, err, sizeof err), 0);
    assert_int_equal(b.length, sizeof text - 1);
    assert_int_equal(b.schema, 7);
    assert_int_equal(b.generation, 42);
    assert_memory_equal(b.data, text, sizeof text - 1);
    assert_true(b.created_ns > 0);
    state_blob_close(&b);
    /* Sealed: nobody can change it any more, not even its writer. */
    assert_int_equal(write(fd, "x", 1), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, 10), -1);
    assert_ptr_equal(mmap(NULL, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
    close(fd);
}

static void built_in_place(void **state)
{
    (void)state;
    void *payload;
    int fd;
    assert_int_equal(state_blob_begin(4096, &payload, &fd), 0);
    memset(payload, 'z', 4096);
    assert_int_equal(state_blob_seal(fd, payload, 4096, 3, 1), 0);
    struct state_blob b;
    char err[256];
    assert_int_equal(state_blob_open(fd, 4096, STATE_BLOB_VERIFY, &b, err, sizeof err), 0);
    assert_int_equal(((const char *)b.data)[4095], 'z');
    state_blob_close(&b);
    close(fd);
}

/* Where the host has no seals (as on Linux 3.10), a blob is an unlinked
 * file: it round-trips, and since nothing keeps its bytes, every open
 * checks them, with or without STATE_BLOB_VERIFY, on a private copy. */
static void without_seals_every_open_checks_a_copy(void **state)
{
    (void)state;
    shmfd_force_fallback(1);
    const char text[] = "unsealed but checked";
    int fd = state_blob_create(text, sizeof text - 1, 2, 9);
    assert_true(fd >= 0);
    assert_int_equal(shmfd_seals(fd), -ENOTSUP); /* not a memfd */
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_nlink, 0); /* unlinked: nobody else can open it */
    assert_int_equal(st.st_mode & 0777, 0600);
    struct state_blob b;
    char err[256] = "";
    assert_int_equal(state_blob_open(fd, 1 << 20, 0, &b, err, sizeof err), 0);
    assert_memory_equal(b.data, text, sizeof text - 1);
    /* The copy is the reader's: a change to the file since leaves it. */
    assert_int_equal(pwrite(fd, "X", 1, STATE_BLOB_HEADER_SIZE), 1);
    assert_int_equal(((const char *)b.data)[0], 'u');
    state_blob_close(&b);
    /* And the next open sees the change as damage, unasked. */
    assert_int_equal(state_blob_open(fd, 1 << 20, 0, &b, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, "checksum"));
    /* Cut short: the length is checked against the file. */
    assert_int_equal(ftruncate(fd, STATE_BLOB_HEADER_SIZE + 3), 0);
    assert_int_equal(state_blob_open(fd, 1 << 20, 0, &b, err, sizeof err), -ENODATA);
    close(fd);

    /* The stats region works there too, unsealed. */
    struct stats_region r;
    assert_int_equal(stats_create(&r, 8), 0);
    assert_int_equal(shmfd_seals(r.fd), -ENOTSUP);
    assert_true(stats_register(&r, "requests", STATS_COUNTER, NULL, 0) >= 0);
    stats_close(&r);
    shmfd_force_fallback(0);

    /* With seals on this host, an unsealed file is refused as before. */
    if (shmfd_host_seals(NULL)) {
        fd = shmfd_create("baton-test", 128, 1);
        assert_true(fd >= 0);
        assert_int_equal(state_blob_open(fd, 1 << 20, 0, &b, err, sizeof err), -EPERM);
        close(fd);
    }
}

/* A blob with HEADER (as valid_header() made it, then changed) and PAYLOAD. */
static int raw_blob(const struct state_blob_header *h, const void *payload, size_t len, int seal)
{
    int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, h, sizeof *h), (ssize_t)sizeof *h);
    if (len)
        assert_int_equal(write(fd, payload, len), (ssize_t)len);
    if (seal)
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
    return fd;
}

static struct state_blob_header valid_header(const char *payload, size_t len)
{
    int fd = state_blob_create(payload, len, 1, 0);
    struct state_blob_header h;
    assert_int_equal(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
    return h;
}

static void rehash(struct state_blob_header *h)
{
    h->header_checksum = 0;
    h->header_checksum = state_crc32c(0, h, sizeof *h);
}

static int check(int fd, uint64_t max, char *err, size_t errlen)
{
    struct state_blob b;
    int r = state_blob_open(fd, max, STATE_BLOB_VERIFY, &b, err, errlen);
    if (r == 0)
        state_blob_close(&b);
    close(fd);
    return r;
}

static void refuses_each_kind_of_bad_blob(void **state)
{
    (void)state;
    const char p[] = "0123456789abcdef";
    char err[256];
    struct state_blob_header h = valid_header(p, 16);

    assert_int_equal(check(raw_blob(&h, p, 16, 1), 1024, err, sizeof err), 0);

    assert_int_equal(check(raw_blob(&h, p, 16, 0), 1024, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "not sealed"));

    struct state_blob_header t = h;
    t.length = 32; /* says more than the file holds */
    rehash(&t);
    assert_int_equal(check(raw_blob(&t, p, 16, 1), 1024, err, sizeof err), -ENODATA);
    assert_non_null(strstr(err, "truncated: header says 32 bytes, the memfd holds 16"));
    assert_int_equal(check(raw_blob(&h, NULL, 0, 1), 1024, err, sizeof err), -ENODATA);

    struct state_blob_header c = h;
    c.checksum ^= 0x100;
    rehash(&c);
    assert_int_equal(check(raw_blob(&c, p, 16, 1), 1024, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, "checksum mismatch"));

    /* A payload changed behind the header's back. */
    assert_int_equal(check(raw_blob(&h, "0123456789abcdeX", 16, 1), 1024, err, sizeof err),
                     -EILSEQ);

    struct state_blob_header m = h;
    memcpy(m.magic, "NOTABLOB", 8);
    rehash(&m);
    assert_int_equal(check(raw_blob(&m, p, 16, 1), 1024, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "not a baton state blob"));

    struct state_blob_header x = h;
    x.schema = 2; /* without rehashing: a header bit flipped */
    assert_int_equal(check(raw_blob(&x, p, 16, 1), 1024, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "header checksum"));

    assert_int_equal(check(raw_blob(&h, p, 16, 1), 15, err, sizeof err), -E2BIG);
    assert_non_null(strstr(err, "over the limit of 15"));

    /* Not a memfd at all. */
    int pipes[2];
    assert_int_equal(pipe(pipes), 0);
    assert_int_equal(check(pipes[0], 1024, err, sizeof err), -EPERM);
    close(pipes[1]);

    /* A short header. */
    int fd = memfd_create("short", MFD_ALLOW_SEALING);
    assert_int_equal(write(fd, "BATNSTB1", 8), 8);
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
    assert_int_equal(check(fd, 1024, err, sizeof err), -ENODATA);
}

/* libbaton's save goes out as FDSTORE=1 with the blob attached; load reads
 * what LISTEN_FDS / LISTEN_FDNAMES name "state". */
static void save_sends_a_sealed_blob_and_load_reads_it(void **state)
{
    (void)state;
    char dir[] = "/tmp/baton-test-XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notify", dir);
    int srv = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    strcpy(un.sun_path, path);
    assert_int_equal(bind(srv, (struct sockaddr *)&un, sizeof un), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    unsetenv("BATON_STATE_NAME");

    assert_int_equal(baton_state_save("hello state", 11, 5), 1);

    char buf[256];
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
    struct msghdr mh = { .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.b,
                         .msg_controllen = sizeof control.b };
    ssize_t n = recvmsg(srv, &mh, MSG_CMSG_CLOEXEC);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "FDSTORE=1\nFDNAME=state\nFDPOLL=0");
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_RIGHTS);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);

    /* As the next generation sees it: the blob at fd 3 + 1, after a listener.
     * (Moved up first: the socket or the blob may already be fd 3 or 4.) */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    close(fd);
    int old_srv = srv;
    srv = fcntl(old_srv, F_DUPFD_CLOEXEC, 100);
    close(old_srv);
    close(3);
    close(4);
    assert_int_equal(dup2(high, 4), 4);
    close(high);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "http:state", 1);
    int placeholder = dup2(srv, 3); /* a listener stands in fd 3 */
    assert_int_equal(placeholder, 3);
    struct baton_state st;
    assert_int_equal(baton_state_load(&st), 0);
    assert_int_equal(st.len, 11);
    assert_int_equal(st.schema, 5);
    assert_memory_equal(st.data, "hello state", 11);
    baton_state_release(&st);

    setenv("LISTEN_FDNAMES", "http:other", 1);
    assert_int_equal(baton_state_load(&st), -ENOENT);
    unsetenv("LISTEN_PID");
    unsetenv("NOTIFY_SOCKET");
    /* Not under a supervisor: nothing to store with, and no error. */
    assert_int_equal(baton_state_save("x", 1, 1), 0);
    close(3);
    close(4);
    close(srv);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_standard_check_value),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(built_in_place),
        cmocka_unit_test(refuses_each_kind_of_bad_blob),
        cmocka_unit_test(without_seals_every_open_checks_a_copy),
        cmocka_unit_test(save_sends_a_sealed_blob_and_load_reads_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
