/* stockade-forward: a box's way to its egress proxy (egress.py, docs/network.md).
 *
 * Usage: forward SOCKET PORT COMMAND [ARG...]
 *
 * Listens on 127.0.0.1:PORT of the box's own network namespace, then leaves a relay process behind
 * (a grandchild, so the box's init is its parent and the command never waits for it) and execs COMMAND.
 * The relay carries every TCP connection to PORT, byte for byte and in both directions, to the unix
 * socket SOCKET, where the host's proxy decides what it may reach. It is not a boundary: the command may
 * kill it or talk to SOCKET itself; the policy lives on the host. One process, poll(), no allocation
 * after start; the box's init kills it when the command has exited.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PAIRS 64
#define BUF 65536

struct half { /* bytes read from one side, waiting to be written to the other */
    char data[BUF];
    size_t len, off;
    int eof; /* the reading side is done; shut the writing side once drained */
};

struct pair {
    int fd[2]; /* 0: the box's TCP connection, 1: the proxy's unix socket */
    struct half to[2]; /* to[i]: read from fd[1-i], written to fd[i] */
};

static struct pair pairs[MAX_PAIRS];
static const char *sock_path;

static int dial(void) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof addr.sun_path) return -1;
    strcpy(addr.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void drop(struct pair *p) {
    for (int i = 0; i < 2; i++) {
        if (p->fd[i] >= 0) close(p->fd[i]);
        p->fd[i] = -1;
    }
}

/* Move bytes on one pair as far as poll said they can go; drop it when both directions are done. */
static void step(struct pair *p, const short *rev) {
    for (int i = 0; i < 2; i++) {
        struct half *h = &p->to[i];
        int src = p->fd[1 - i], dst = p->fd[i];
        if (h->len == 0 && !h->eof && (rev[1 - i] & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(src, h->data, BUF);
            if (n > 0) {
                h->len = (size_t)n;
                h->off = 0;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                h->eof = 1;
                shutdown(dst, SHUT_WR);
            }
        }
        if (h->len > 0 && (rev[i] & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(dst, h->data + h->off, h->len, MSG_NOSIGNAL);
            if (n > 0) {
                h->off += (size_t)n;
                h->len -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                drop(p);
                return;
            }
        }
    }
    if (p->to[0].eof && p->to[1].eof && p->to[0].len == 0 && p->to[1].len == 0) drop(p);
}

static void accept_one(int listener) {
    int tcp = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (tcp < 0) return;
    for (int i = 0; i < MAX_PAIRS; i++) {
        if (pairs[i].fd[0] >= 0) continue;
        int up = dial();
        if (up < 0) break;
        memset(&pairs[i], 0, sizeof pairs[i]);
        pairs[i].fd[0] = tcp;
        pairs[i].fd[1] = up;
        return;
    }
    close(tcp); /* full, or the proxy is gone: the client sees its connection closed */
}

static void relay(int listener) {
    static struct pollfd fds[1 + 2 * MAX_PAIRS];
    for (;;) {
        fds[0] = (struct pollfd){.fd = listener, .events = POLLIN};
        for (int i = 0; i < MAX_PAIRS; i++) {
            struct pair *p = &pairs[i];
            for (int s = 0; s < 2; s++) {
                short ev = 0;
                if (p->fd[0] >= 0) {
                    if (p->to[1 - s].len == 0 && !p->to[1 - s].eof) ev |= POLLIN; /* s feeds to[1-s] */
                    if (p->to[s].len > 0) ev |= POLLOUT;
                }
                /* nothing wanted of a socket: leave it out, or a hung-up peer would wake poll forever */
                fds[1 + 2 * i + s] = (struct pollfd){.fd = ev ? p->fd[s] : -1, .events = ev};
            }
        }
        if (poll(fds, 1 + 2 * MAX_PAIRS, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        for (int i = 0; i < MAX_PAIRS; i++) {
            if (pairs[i].fd[0] < 0) continue;
            short rev[2] = {fds[1 + 2 * i].revents, fds[2 + 2 * i].revents};
            if (rev[0] || rev[1]) step(&pairs[i], rev);
        }
        if (fds[0].revents & POLLIN) accept_one(listener);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s SOCKET PORT COMMAND [ARG...]\n", argv[0]);
        return 127;
    }
    sock_path = argv[1];
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, MAX_PAIRS) < 0) {
        perror("stockade-forward: cannot listen for the egress proxy");
        return 127;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("stockade-forward: fork");
        return 127;
    }
    if (child == 0) {
        if (fork() != 0) _exit(0); /* the relay is the grandchild: init adopts it */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; fd++) dup2(null, fd); /* never hold the run's output open */
        for (int i = 0; i < MAX_PAIRS; i++) pairs[i].fd[0] = pairs[i].fd[1] = -1;
        relay(listener);
    }
    waitpid(child, NULL, 0);
    close(listener);
    execvp(argv[3], argv + 3);
    fprintf(stderr, "stockade-forward: cannot execute %s: %s\n", argv[3], strerror(errno));
    return 127;
}
