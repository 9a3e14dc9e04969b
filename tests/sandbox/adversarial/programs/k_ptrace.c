/* PR-07/CR-05: ptrace, process_vm_* and /proc/<pid>/mem against the own child, the box init (bubblewrap)
 * and the own process. */
#include "adv.h"
#include <sys/ptrace.h>
#include <sys/uio.h>

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    TRY("ptrace_traceme", ptrace(PTRACE_TRACEME, 0, 0, 0));
    TRY("ptrace_attach_child", ptrace(PTRACE_ATTACH, child, 0, 0));
    TRY("ptrace_seize_child", ptrace(PTRACE_SEIZE, child, 0, 0));
    TRY("ptrace_attach_init", ptrace(PTRACE_ATTACH, 1, 0, 0));
    char buf[16], data[16] = "x";
    struct iovec local = {buf, sizeof buf}, remote = {data, sizeof data};
    TRY("process_vm_readv_child", process_vm_readv(child, &local, 1, &remote, 1, 0));
    TRY("process_vm_writev_init", process_vm_writev(1, &local, 1, &remote, 1, 0));
    int fd = open("/proc/1/mem", O_RDWR);
    SAY("open_init_mem=%s\n", fd < 0 ? ename(errno) : "OK");
    TRY("open_init_environ", open("/proc/1/environ", O_RDONLY));
    /* Reaching init's memory is only harmless if init is as confined as the program: check. */
    char st[4096] = "";
    int sfd = open("/proc/1/status", O_RDONLY);
    read(sfd, st, sizeof st - 1);
    const char *keys[] = {"Seccomp:", "NoNewPrivs:", "CapEff:", "CapBnd:"};
    for (int i = 0; i < 4; i++) {
        char *at = strstr(st, keys[i]);
        if (!at) continue;
        at += strlen(keys[i]);
        while (*at == '\t' || *at == ' ') at++;
        SAY("init_%.*s=%.*s\n", (int)strlen(keys[i]) - 1, keys[i], (int)strcspn(at, "\n"), at);
    }
    kill(child, SIGKILL);
    return 0;
}
