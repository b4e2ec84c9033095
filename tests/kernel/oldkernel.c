/* oldkernel: runs a command as if under an older Linux kernel, or in a
 * sandbox that refuses netlink sock_diag, by a seccomp filter that every
 * descendant inherits. For the tests of baton's fallbacks (src/os/).
 *
 *   oldkernel PROFILE[,PROFILE...] COMMAND [ARG...]
 *
 * Profiles:
 *   3.10 4.18 5.4 5.10  every system call that came after that kernel
 *                       answers ENOSYS, as the kernel itself would (a
 *                       call it does not know), and a flag that came
 *                       after it EINVAL (close_range's CLOSE_RANGE_CLOEXEC
 *                       before 5.11)
 *   nosockdiag          socket(AF_NETLINK, *, NETLINK_SOCK_DIAG) answers
 *                       EACCES, as Docker's default profile and gVisor
 *                       refuse it
 *   none                no filter: the same command, for a baseline
 *
 * It simulates the system call surface only: /proc, the file systems and
 * the kernel's behaviour stay this kernel's. A call this libseccomp does
 * not know by name is left alone (nothing in baton, libuv, LuaJIT or libc
 * depends on one that new). Exit status: the command's (exec), or 2 for a
 * bad use, 1 when the filter cannot be installed. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NETLINK_SOCK_DIAG
#define NETLINK_SOCK_DIAG 4
#endif
#define CLOSE_RANGE_CLOEXEC_FLAG (1U << 2)

/* First kernel of each system call after 3.10 (x86-64's table; man 2
 * syscalls). Encoded as major * 100 + minor. */
static const struct {
    const char *name;
    int since;
} calls[] = {
    { "sched_setattr", 314 },
    { "sched_getattr", 314 },
    { "renameat2", 315 },
    { "seccomp", 317 },
    { "getrandom", 317 },
    { "memfd_create", 317 },
    { "kexec_file_load", 317 },
    { "bpf", 318 },
    { "execveat", 319 },
    { "userfaultfd", 403 },
    { "membarrier", 403 },
    { "mlock2", 404 },
    { "copy_file_range", 405 },
    { "preadv2", 406 },
    { "pwritev2", 406 },
    { "pkey_mprotect", 409 },
    { "pkey_alloc", 409 },
    { "pkey_free", 409 },
    { "statx", 411 },
    { "io_pgetevents", 418 },
    { "rseq", 418 },
    { "pidfd_send_signal", 501 },
    { "io_uring_setup", 501 },
    { "io_uring_enter", 501 },
    { "io_uring_register", 501 },
    { "open_tree", 502 },
    { "move_mount", 502 },
    { "fsopen", 502 },
    { "fsconfig", 502 },
    { "fsmount", 502 },
    { "fspick", 502 },
    { "pidfd_open", 503 },
    { "clone3", 503 },
    { "openat2", 506 },
    { "pidfd_getfd", 506 },
    { "faccessat2", 508 },
    { "close_range", 509 },
    { "process_madvise", 510 },
    { "epoll_pwait2", 511 },
    { "mount_setattr", 512 },
    { "landlock_create_ruleset", 513 },
    { "landlock_add_rule", 513 },
    { "landlock_restrict_self", 513 },
    { "quotactl_fd", 514 },
    { "memfd_secret", 514 },
    { "process_mrelease", 515 },
    { "futex_waitv", 516 },
    { "set_mempolicy_home_node", 517 },
    { "cachestat", 605 },
    { "fchmodat2", 606 },
    { "map_shadow_stack", 606 },
    { "futex_wake", 607 },
    { "futex_wait", 607 },
    { "futex_requeue", 607 },
    { "statmount", 608 },
    { "listmount", 608 },
    { "lsm_get_self_attr", 608 },
    { "lsm_set_self_attr", 608 },
    { "lsm_list_modules", 608 },
    { "mseal", 610 },
};

static const struct {
    const char *name;
    int version;
} kernels[] = { { "3.10", 310 }, { "4.18", 418 }, { "5.4", 504 }, { "5.10", 510 } };

static int usage(void)
{
    fprintf(stderr, "usage: oldkernel 3.10|4.18|5.4|5.10|nosockdiag|none[,...] COMMAND [ARG...]\n");
    return 2;
}

static int rule(scmp_filter_ctx f, uint32_t action, const char *name, unsigned n,
                const struct scmp_arg_cmp *cmp)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* unknown to this libseccomp: left alone (above) */
    int r = seccomp_rule_add_array(f, action, nr, n, cmp);
    if (r < 0)
        fprintf(stderr, "oldkernel: %s: %s\n", name, strerror(-r));
    return r;
}

/* The calls after kernel VERSION answer ENOSYS. */
static int older_than(scmp_filter_ctx f, int version)
{
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        if (calls[i].since <= version)
            continue;
        int r = rule(f, SCMP_ACT_ERRNO(ENOSYS), calls[i].name, 0, NULL);
        if (r < 0)
            return r;
    }
    if (version >= 509 && version < 511) {
        /* close_range is there, its CLOEXEC flag not yet. */
        struct scmp_arg_cmp flag = SCMP_A2(SCMP_CMP_MASKED_EQ, CLOSE_RANGE_CLOEXEC_FLAG,
                                           CLOSE_RANGE_CLOEXEC_FLAG);
        return rule(f, SCMP_ACT_ERRNO(EINVAL), "close_range", 1, &flag);
    }
    return 0;
}

static int no_sock_diag(scmp_filter_ctx f)
{
    struct scmp_arg_cmp cmp[2] = { SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                   SCMP_A2(SCMP_CMP_EQ, NETLINK_SOCK_DIAG) };
    return rule(f, SCMP_ACT_ERRNO(EACCES), "socket", 2, cmp);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (!f) {
        fprintf(stderr, "oldkernel: seccomp_init failed\n");
        return 1;
    }
    char *list = strdup(argv[1]), *save = NULL;
    int r = list ? 0 : -ENOMEM, rules = 0;
    for (char *p = list ? strtok_r(list, ",", &save) : NULL; p && r == 0;
         p = strtok_r(NULL, ",", &save)) {
        size_t k = 0;
        while (k < sizeof kernels / sizeof kernels[0] && strcmp(kernels[k].name, p) != 0)
            k++;
        if (k < sizeof kernels / sizeof kernels[0]) {
            r = older_than(f, kernels[k].version);
            rules = 1;
        } else if (strcmp(p, "nosockdiag") == 0) {
            r = no_sock_diag(f);
            rules = 1;
        } else if (strcmp(p, "none") != 0) {
            fprintf(stderr, "oldkernel: unknown profile '%s'\n", p);
            free(list);
            seccomp_release(f);
            return usage();
        }
    }
    free(list);
    if (r == 0 && rules && (r = seccomp_load(f)) < 0)
        fprintf(stderr, "oldkernel: cannot install the filter: %s\n", strerror(-r));
    seccomp_release(f);
    if (r < 0)
        return 1;
    execvp(argv[2], argv + 2);
    fprintf(stderr, "oldkernel: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
