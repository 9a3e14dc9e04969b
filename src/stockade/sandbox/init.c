/* stockade-init: pid 1 of every box.
 *
 * Usage: init STATUS_FD CONTROL_FD
 *
 * A box is built before its run is known (ahead of demand). init first writes "R" to CONTROL_FD, a unix
 * socket from the supervisor, to say the box is up (bubblewrap has made every namespace and mount and
 * exec'd it), then waits there for the run: a first byte carrying the run's stdin, stdout and stderr
 * descriptors (SCM_RIGHTS), then NUL-terminated fields up to EOF:
 *     NRLIMITS, "RESOURCE:VALUE" x NRLIMITS, ARGC, ARGV x ARGC, ENVC, "NAME=VALUE" x ENVC
 * It sets those rlimits (hard = soft, so they cannot be raised back), makes the descriptors the
 * command's 0, 1 and 2, runs it with exactly that environment, and when it has exited kills and reaps
 * every other process of the box. Only then does it write the command's raw wait status to STATUS_FD
 * ("W <status>\n", or "E <errno>\n" when it cannot be executed, "X <errno>\n" when init itself fails),
 * so the report both gives the real exit code or signal (bubblewrap alone reports a signal N as exit
 * status 128+N, which a program could forge with exit(128+N)) and certifies that nothing of the run is
 * left: the host can take the result without waiting for the namespaces to be torn down. EOF before any
 * byte means the box was discarded or killed.
 *
 * As pid 1 of the box's pid namespace it cannot be signalled from inside the box (the kernel drops
 * signals to a namespace init that has no handler), it is not dumpable (its memory cannot be written
 * through /proc), and both descriptors are close-on-exec, so the command never holds them. It reaps
 * orphans, and when it exits the kernel kills everything left in the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MESSAGE (16 << 20)

extern char **environ;

static void report(int fd, char kind, int value) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%c %d\n", kind, value);
    if (n > 0) {
        ssize_t ignored = write(fd, buf, (size_t)n);
        (void)ignored;
    }
}

#define NSTDIO 3

/* Receive the first byte and the run's stdin, stdout and stderr into fds; 0, -2 on EOF, -1 on error. */
static int receive_stdio(int ctl, int fds[NSTDIO]) {
    char first;
    struct iovec io = {&first, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(NSTDIO * sizeof(int))];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do {
        n = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return -2;
    if (n < 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || (msg.msg_flags & MSG_CTRUNC) ||
        c->cmsg_len != CMSG_LEN(NSTDIO * sizeof(int))) {
        errno = EPROTO;
        return -1;
    }
    memcpy(fds, CMSG_DATA(c), NSTDIO * sizeof(int));
    return 0;
}

/* Read the rest of the message up to EOF; returns its length, -1 on error. */
static ssize_t receive_fields(int ctl, char **out) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return -1;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_MESSAGE) {
                errno = E2BIG;
                return -1;
            }
            cap *= 2;
            char *grown = realloc(buf, cap);
            if (grown == NULL) return -1;
            buf = grown;
        }
        ssize_t n = read(ctl, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        len += (size_t)n;
    }
    *out = buf;
    return (ssize_t)len;
}

/* Cursor over NUL-terminated fields. */
struct fields {
    char *at, *end;
};

static char *next_field(struct fields *f) {
    if (f->at >= f->end) return NULL;
    char *nul = memchr(f->at, '\0', (size_t)(f->end - f->at));
    if (nul == NULL) return NULL;
    char *field = f->at;
    f->at = nul + 1;
    return field;
}

/* A count field followed by that many fields, as a NULL-terminated vector; NULL when malformed. */
static char **next_vector(struct fields *f, long max) {
    char *count = next_field(f);
    if (count == NULL) return NULL;
    char *endp;
    long n = strtol(count, &endp, 10);
    if (*endp != '\0' || n < 0 || n > max) return NULL;
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (v == NULL) return NULL;
    for (long i = 0; i < n; i++) {
        if ((v[i] = next_field(f)) == NULL) return NULL;
    }
    return v;
}

static int set_rlimits(char **limits) {
    for (; *limits != NULL; limits++) {
        char *colon = strchr(*limits, ':');
        if (colon == NULL) {
            errno = EINVAL;
            return -1;
        }
        rlim_t value = (rlim_t)strtoull(colon + 1, NULL, 10);
        struct rlimit rl = {value, value};
        if (setrlimit(atoi(*limits), &rl) != 0) return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("stockade-init: usage: init STATUS_FD CONTROL_FD\n", stderr);
        return 126;
    }
    int status_fd = atoi(argv[1]), ctl = atoi(argv[2]);
    if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(ctl, F_SETFD, FD_CLOEXEC) != 0) {
        perror("stockade-init: descriptors");
        return 126;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* A host that discarded the box already closed its end: EPIPE, and nothing to run. */
    if (send(ctl, "R", 1, MSG_NOSIGNAL) != 1) return 0;

    int stdio[NSTDIO];
    int got_stdio = receive_stdio(ctl, stdio);
    if (got_stdio == -2) return 0;
    char *message = NULL;
    ssize_t len = got_stdio < 0 ? -1 : receive_fields(ctl, &message);
    if (len < 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    struct fields f = {message, message + len};
    char **limits = next_vector(&f, 64);
    char **command = limits ? next_vector(&f, 1 << 20) : NULL;
    char **env = command ? next_vector(&f, 1 << 20) : NULL;
    if (env == NULL || command[0] == NULL || f.at != f.end) {
        report(status_fd, 'X', EPROTO);
        return 126;
    }
    if (set_rlimits(limits) != 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    /* From here init's own 0-2 are the run's (bubblewrap's stdout and stderr are no longer held). */
    for (int i = 0; i < NSTDIO; i++) {
        if (stdio[i] < NSTDIO && (stdio[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, NSTDIO)) < 0) {
            report(status_fd, 'X', errno);
            return 126;
        }
    }
    for (int i = 0; i < NSTDIO; i++) {
        if (dup2(stdio[i], i) != i) {
            report(status_fd, 'X', errno);
            return 126;
        }
        close(stdio[i]);
    }
    close(ctl);
    environ = env; /* execvp searches the box's PATH, not the one bubblewrap started us with */

    /* Tell the child when exec succeeded (the pipe closes) or why it failed (an errno). */
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    pid_t child = fork();
    if (child < 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    if (child == 0) {
        close(sync[0]);
        /* ETXTBSY: a process forked on the host while the service wrote this file into the box holds a
         * copy of its descriptor until that process execs, which is a matter of microseconds, or of the
         * host's scheduling. Wait that out, up to a second. */
        const struct timespec ms = {0, 1000000};
        for (int tries = 0; execvp(command[0], command) < 0 && errno == ETXTBSY && tries < 1000; tries++) {
            nanosleep(&ms, NULL);
        }
        int err = errno;
        ssize_t ignored = write(sync[1], &err, sizeof err);
        (void)ignored;
        fprintf(stderr, "stockade-init: cannot execute %s: %s\n", command[0], strerror(err));
        _exit(127);
    }
    close(sync[1]);
    /* Only the command and what it starts hold the output pipes: they reach EOF when the box is empty. */
    for (int i = 0; i < NSTDIO; i++) close(i);
    int exec_errno = 0;
    ssize_t got;
    do {
        got = read(sync[0], &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    close(sync[0]);

    int status = 0;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid == child) {
            status = st;
            break;
        }
        if (pid < 0 && errno != EINTR) {
            report(status_fd, 'X', errno);
            return 126;
        }
    }
    /* The command is gone, and so goes the rest of the box. As pid 1 of the box's pid namespace,
     * kill(-1) reaches exactly the box's other processes (outside a box, as in the helper tests, init
     * only reaps). Orphans are reparented to us before their parent can be reaped, so ECHILD means no
     * process of the box is left. */
    for (;;) {
        if (getpid() == 1) kill(-1, SIGKILL);
        pid_t pid = waitpid(-1, NULL, __WALL);
        if (pid < 0 && errno == ECHILD) break;
        if (pid < 0 && errno != EINTR) {
            report(status_fd, 'X', errno);
            return 126;
        }
    }
    if (got == (ssize_t)sizeof exec_errno) {
        report(status_fd, 'E', exec_errno);
        return 127;
    }
    report(status_fd, 'W', status);
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}
