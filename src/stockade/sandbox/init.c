/* stockade-init: pid 1 of every box.
 *
 * Usage: init STATUS_FD COMMAND [ARGS...]
 *
 * Runs COMMAND and writes its raw wait status to STATUS_FD ("W <status>\n", or "E <errno>\n" when it
 * cannot be executed), so the host learns the real exit code or signal. bubblewrap alone reports a
 * signal N as exit status 128+N, which a program could forge with exit(128+N).
 *
 * As pid 1 of the box's pid namespace it cannot be signalled from inside the box (the kernel drops
 * signals to a namespace init that has no handler), it is not dumpable (its memory cannot be written
 * through /proc), and STATUS_FD is close-on-exec, so the command never holds it. It reaps orphans, and
 * when it exits the kernel kills everything left in the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(int fd, char kind, int value) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%c %d\n", kind, value);
    if (n > 0) {
        ssize_t ignored = write(fd, buf, (size_t)n);
        (void)ignored;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs("stockade-init: usage: init STATUS_FD COMMAND [ARGS...]\n", stderr);
        return 126;
    }
    int fd = atoi(argv[1]);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        perror("stockade-init: status fd");
        return 126;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    /* Tell the child when exec succeeded (the pipe closes) or why it failed (an errno). */
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0) {
        perror("stockade-init: pipe");
        return 126;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("stockade-init: fork");
        return 126;
    }
    if (child == 0) {
        close(sync[0]);
        execvp(argv[2], argv + 2);
        int err = errno;
        ssize_t ignored = write(sync[1], &err, sizeof err);
        (void)ignored;
        fprintf(stderr, "stockade-init: cannot execute %s: %s\n", argv[2], strerror(err));
        _exit(127);
    }
    close(sync[1]);
    int exec_errno = 0;
    ssize_t got;
    do {
        got = read(sync[0], &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    close(sync[0]);

    int status = 0;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid == child) {
            status = st;
            break;
        }
        if (pid < 0 && errno != EINTR) {
            report(fd, 'X', errno);
            return 126;
        }
    }
    if (got == (ssize_t)sizeof exec_errno) {
        report(fd, 'E', exec_errno);
        return 127;
    }
    report(fd, 'W', status);
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}
