/* K-01/NET-06: new namespaces of every kind (user namespaces would give a namespaced CAP_SYS_ADMIN),
 * by unshare(), by raw clone() with each flag, by clone3() and by setns() into the own namespaces. */
#include "adv.h"
#include <sched.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int main(void) {
    struct {
        long flag;
        const char *name;
    } ns[] = {{CLONE_NEWUSER, "user"},     {CLONE_NEWNS, "mnt"},   {CLONE_NEWNET, "net"},
              {CLONE_NEWPID, "pid"},       {CLONE_NEWIPC, "ipc"},  {CLONE_NEWUTS, "uts"},
              {CLONE_NEWCGROUP, "cgroup"}, {CLONE_NEWTIME, "time"}, {CLONE_NEWUSER | CLONE_NEWNET, "user_net"}};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "unshare_%s", ns[i].name);
        TRY(label, unshare((int)ns[i].flag));
        if (ns[i].flag == CLONE_NEWTIME) continue; /* clone() has no room for it */
        snprintf(label, sizeof label, "clone_%s", ns[i].name);
        long pid = syscall(SYS_clone, ns[i].flag | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        errno = pid < 0 ? errno : 0;
        SAY("%s=%s\n", label, pid < 0 ? ename(errno) : "OK");
    }
    /* clone3: flags live in memory, out of a seccomp filter's reach; it must be refused outright. */
    struct {
        unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    long pid = syscall(435 /* clone3 */, &args, sizeof args);
    if (pid == 0) _exit(0);
    SAY("clone3_user=%s\n", pid < 0 ? ename(errno) : "OK");
    /* A high bit outside the 32-bit flag word must not smuggle CLONE_NEWUSER past the filter. */
    pid = syscall(SYS_clone, 0x100000000UL | CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    SAY("clone_user_highbits=%s\n", pid < 0 ? ename(errno) : "OK");
    const char *mine[] = {"user", "mnt", "net", "pid", "ipc", "uts", "cgroup"};
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++) {
        char path[64], label[64];
        snprintf(path, sizeof path, "/proc/1/ns/%s", mine[i]);
        snprintf(label, sizeof label, "setns_%s", mine[i]);
        int fd = open(path, O_RDONLY);
        TRY(label, setns(fd, 0));
    }
    SAY("max_user_namespaces=");
    int fd = open("/proc/sys/user/max_user_namespaces", O_RDONLY);
    char b[32] = "";
    read(fd, b, sizeof b - 1);
    SAY("%s", b);
    return 0;
}
