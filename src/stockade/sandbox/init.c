/* stockade-init: pid 1 of every box.
 *
 * Usage: init STATUS_FD CONTROL_FD
 *
 * A box is built before its run is known (ahead of demand). init first writes "R" to CONTROL_FD, a unix
 * socket from the supervisor, to say the box is up (bubblewrap has made every namespace and mount and
 * exec'd it), then waits there for the run: a first byte carrying the run's stdin, stdout and stderr
 * descriptors and read-only descriptors of the box cgroup's pids.current and pids.events
 * (SCM_RIGHTS), then NUL-terminated fields up to EOF:
 *     PIDS_MAX, NRLIMITS, "RESOURCE:VALUE" x NRLIMITS, ARGC, ARGV x ARGC, ENVC, "NAME=VALUE" x ENVC
 * It sets those rlimits (hard = soft, so they cannot be raised back), makes the descriptors the
 * command's 0, 1 and 2, runs it with exactly that environment, and when it has exited kills and reaps
 * every other process of the box. Only then does it write the command's raw wait status to STATUS_FD
 * ("W <status> <refused forks>\n", or "E <errno>\n" when it cannot be executed, "X <errno>\n" when init
 * itself fails),
 * so the report both gives the real exit code or signal (bubblewrap alone reports a signal N as exit
 * status 128+N, which a program could forge with exit(128+N)) and certifies that nothing of the run is
 * left: the host can take the result without waiting for the namespaces to be torn down. EOF before any
 * byte means the box was discarded or killed.
 *
 * Process creation (fork, vfork, clone) in the command's tree goes through a seccomp user notification
 * to init. While the box is at its process limit (pids.current >= PIDS_MAX), and once the kernel has
 * refused one fork itself (so pids.events records the limit as hit), init refuses it with EAGAIN at the
 * syscall boundary, before the kernel allocates anything; otherwise the kernel goes on as usual (the
 * pids controller stays the hard limit). A fork refused by the kernel still costs a task struct and
 * a kernel stack that are freed only after an RCU grace period and are charged to the box: a fork storm
 * against the limit held tens of MiB that way and got the box OOM-killed, depending on timing.
 *
 * As pid 1 of the box's pid namespace it cannot be signalled from inside the box (the kernel drops
 * signals to a namespace init that has no handler), it is not dumpable (its memory cannot be written
 * through /proc), and both descriptors are close-on-exec, so the command never holds them. It reaps
 * orphans, and when it exits the kernel kills everything left in the namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
#define NFDS 5 /* stdin, stdout, stderr, pids.current, pids.events */

/* One message of up to `len` bytes into buf, with exactly `nfds` descriptors (close-on-exec) into fds
 * or none; returns its length (0 at EOF, -1 on error) and sets *got to the descriptors received. */
static ssize_t recv_with_fds(int sock, void *buf, size_t len, int *fds, int nfds, int *got) {
    struct iovec io = {buf, len};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(NFDS * sizeof(int))];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    *got = 0;
    if (n <= 0) return n;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (msg.msg_flags & MSG_CTRUNC) {
        errno = EPROTO;
        return -1;
    }
    if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN((size_t)nfds * sizeof(int))) {
        memcpy(fds, CMSG_DATA(c), (size_t)nfds * sizeof(int));
        *got = nfds;
    }
    return n;
}

/* Receive the first byte and the run's descriptors into fds; 0, -2 on EOF, -1 on error. */
static int receive_fds(int ctl, int fds[NFDS]) {
    char first;
    int got;
    ssize_t n = recv_with_fds(ctl, &first, 1, fds, NFDS, &got);
    if (n == 0) return -2;
    if (n < 0) return -1;
    if (got != NFDS) {
        errno = EPROTO;
        return -1;
    }
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

/* The filter that sends process creation to init. Other ABIs are left to the box's own filter, which
 * kills them; clone3 is refused there (ENOSYS), and a refusal there outranks a notification. */
static int install_fork_filter(void) {
#if defined(__x86_64__)
#define FORK_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FORK_ARCH AUDIT_ARCH_AARCH64
#else
#error "stockade-init: no seccomp architecture for this CPU"
#endif
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FORK_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 3, 0),
#ifdef __NR_fork /* absent on aarch64: the same test again keeps the jumps fixed */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fork, 2, 0),
#else
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 2, 0),
#endif
#ifdef __NR_vfork
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_vfork, 1, 0),
#else
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
#endif
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* One message on the child's socket to init: a kind byte, an int, and optionally one descriptor. */
static void send_word(int sock, char kind, int value, int fd) {
    char buf[1 + sizeof value];
    buf[0] = kind;
    memcpy(buf + 1, &value, sizeof value);
    struct iovec io = {buf, sizeof buf};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t ignored = sendmsg(sock, &msg, MSG_NOSIGNAL);
    (void)ignored;
}

/* The next message from the child: 1 with kind, value (and *fd if one came), 0 at EOF, -1 on error. */
static int recv_word(int sock, char *kind, int *value, int *fd) {
    char buf[1 + sizeof *value];
    int got;
    ssize_t n = recv_with_fds(sock, buf, sizeof buf, fd, 1, &got);
    if (n == 0) return 0;
    if (n != (ssize_t)sizeof buf) {
        errno = n < 0 ? errno : EPROTO;
        return -1;
    }
    *kind = buf[0];
    memcpy(value, buf + 1, sizeof *value);
    return 1;
}

/* The box's pids controller counts, through descriptors the supervisor passed. */
struct pids {
    int current_fd, events_fd;
    long max;
    int kernel_counted; /* the controller has refused a fork itself: pids.events says "max N", N > 0 */
};

static long read_number(int fd, const char *key) {
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *at = key ? strstr(buf, key) : buf;
    return at ? strtol(at + (key ? strlen(key) : 0), NULL, 10) : -1;
}

/* Whether to refuse a fork here: the box is at its limit (an unreadable count refuses), and the kernel
 * has already refused one itself, so its own count (what the supervisor reports as the limit being hit)
 * holds whatever becomes of this run. Until then the fork goes on to the kernel, which refuses it. */
static int refuse_fork(struct pids *p) {
    if (p->max <= 0) return 0;
    long current = read_number(p->current_fd, NULL);
    if (current >= 0 && current < p->max) return 0;
    if (!p->kernel_counted) p->kernel_counted = read_number(p->events_fd, "max ") > 0;
    return p->kernel_counted || current < 0;
}

/* Answer one notification: refuse with EAGAIN (what the pids controller answers), or let the kernel
 * carry the call out. A target that died meanwhile makes either ioctl fail with ENOENT. */
static void answer_fork(int listener, struct pids *p, long *refused) {
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    if (refuse_fork(p)) {
        resp.error = -EAGAIN;
        (*refused)++;
    } else {
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
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

    int fds[NFDS];
    int got_fds = receive_fds(ctl, fds);
    if (got_fds == -2) return 0;
    char *message = NULL;
    ssize_t len = got_fds < 0 ? -1 : receive_fields(ctl, &message);
    if (len < 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    struct fields f = {message, message + len};
    char *max_field = next_field(&f);
    char *endp = NULL;
    long pids_max = max_field ? strtol(max_field, &endp, 10) : -1;
    char **limits = endp && *endp == '\0' && pids_max >= 0 ? next_vector(&f, 64) : NULL;
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
    struct pids pids = {fds[NSTDIO], fds[NSTDIO + 1], pids_max, 0};
    /* From here init's own 0-2 are the run's (bubblewrap's stdout and stderr are no longer held). */
    for (int i = 0; i < NSTDIO; i++) {
        if (fds[i] < NSTDIO && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, NSTDIO)) < 0) {
            report(status_fd, 'X', errno);
            return 126;
        }
    }
    for (int i = 0; i < NSTDIO; i++) {
        if (dup2(fds[i], i) != i) {
            report(status_fd, 'X', errno);
            return 126;
        }
        close(fds[i]);
    }
    close(ctl);
    environ = env; /* execvp searches the box's PATH, not the one bubblewrap started us with */

    /* SIGCHLD through a descriptor, so one poll waits for children and notifications alike. The
     * child hands init its filter's listener over `chan` (a socket: descriptors travel only there) and
     * execs once init has closed its end (`ack`), so no socket of ours is left for the program to see
     * in /proc/net/unix; `sync` is close-on-exec and carries only an exec failure's errno. */
    sigset_t chld, blocked, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    blocked = chld;
    sigaddset(&blocked, SIGPIPE); /* the ack to a child that died is EPIPE, not a signal */
    int sigfd = -1, chan[2], ack[2], sync[2];
    if (sigprocmask(SIG_BLOCK, &blocked, &old) != 0 || (sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) != 0 || pipe2(ack, O_CLOEXEC) != 0 ||
        pipe2(sync, O_CLOEXEC) != 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    pid_t child = fork();
    if (child < 0) {
        report(status_fd, 'X', errno);
        return 126;
    }
    if (child == 0) {
        close(chan[0]);
        close(ack[1]);
        close(sync[0]);
        sigprocmask(SIG_SETMASK, &old, NULL);
        int listener = install_fork_filter();
        if (listener < 0) {
            send_word(chan[1], 'F', errno, -1);
            _exit(126);
        }
        send_word(chan[1], 'L', 0, listener);
        close(listener);
        close(chan[1]);
        char byte;
        while (read(ack[0], &byte, 1) < 0 && errno == EINTR) {
        }
        close(ack[0]);
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
    close(chan[1]);
    close(ack[0]);
    close(sync[1]);
    /* Only the command and what it starts hold the output pipes: they reach EOF when the box is empty. */
    for (int i = 0; i < NSTDIO; i++) close(i);

    int listener = -1, filter_errno = 0;
    char kind = 0;
    int value = 0;
    if (recv_word(chan[0], &kind, &value, &listener) == 1 && kind == 'F') filter_errno = value;
    close(chan[0]); /* before the ack: the socket is gone once the program runs */
    if (write(ack[1], "G", 1) != 1 && listener >= 0) { /* the child died: nothing will use the filter */
        close(listener);
        listener = -1;
    }
    close(ack[1]);

    int exec_errno = 0, status = 0, done = 0;
    long refused = 0;
    struct pollfd pfd[3] = {{sigfd, POLLIN, 0}, {sync[0], POLLIN, 0}, {listener, POLLIN, 0}};
    while (!done) {
        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR) continue;
            report(status_fd, 'X', errno);
            return 126;
        }
        if (pfd[2].revents & POLLIN) answer_fork(listener, &pids, &refused);
        if (pfd[2].revents & (POLLHUP | POLLERR)) pfd[2].fd = -1; /* no task uses the filter any more */
        if (pfd[1].revents) {
            /* an errno when exec failed; EOF when it succeeded (or the child is gone) */
            if (read(sync[0], &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno) exec_errno = 0;
            pfd[1].fd = -1;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) > 0) {
            }
            for (;;) {
                int st;
                pid_t pid = waitpid(-1, &st, __WALL | WNOHANG);
                if (pid <= 0) break;
                if (pid == child) {
                    status = st;
                    done = 1;
                }
            }
        }
    }
    /* The exec result was written before the child could exit: read it if the loop did not. */
    if (pfd[1].fd >= 0 && read(sync[0], &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno) {
        exec_errno = 0;
    }
    if (listener >= 0) close(listener);
    close(sync[0]);
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
    if (filter_errno != 0) {
        report(status_fd, 'X', filter_errno);
        return 126;
    }
    if (exec_errno != 0) {
        report(status_fd, 'E', exec_errno);
        return 127;
    }
    char buf[48];
    int n = snprintf(buf, sizeof buf, "W %d %ld\n", status, refused);
    if (n > 0) {
        ssize_t ignored = write(status_fd, buf, (size_t)n);
        (void)ignored;
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return 128 + WTERMSIG(status);
}
