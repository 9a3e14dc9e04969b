/* MEM-05: kernel memory not obviously charged: pipes grown to 1 MiB and filled, socketpair buffers,
 * epoll and inotify instances, until something refuses. */
#include "adv.h"
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>

int main(void) {
    static char buf[64 << 10];
    memset(buf, 'p', sizeof buf);
    long pipe_bytes = 0;
    int pipes = 0, grow_err = 0, pipe_err = 0;
    for (;;) {
        int p[2];
        if (pipe2(p, O_NONBLOCK) != 0) {
            pipe_err = errno;
            break;
        }
        pipes++;
        if (fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0 && !grow_err) grow_err = errno;
        ssize_t w;
        while ((w = write(p[1], buf, sizeof buf)) > 0) pipe_bytes += w;
        if (pipes >= 100) break;
    }
    SAY("pipes=%d\npipe_mib=%ld\nsetpipe_sz=%s\npipe_stop=%s\n", pipes, pipe_bytes >> 20,
        grow_err ? ename(grow_err) : "OK", pipe_err ? ename(pipe_err) : "cap");
    long sock_bytes = 0;
    for (int i = 0; i < 10; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) break;
        ssize_t w;
        while ((w = write(sv[0], buf, sizeof buf)) > 0) sock_bytes += w;
    }
    SAY("sock_kib=%ld\n", sock_bytes >> 10);
    int ep = 0, in = 0, watches = 0;
    for (int i = 0; i < 20; i++) {
        if (epoll_create1(0) >= 0) ep++;
        int fd = inotify_init1(0);
        if (fd >= 0) {
            in++;
            for (int k = 0; k < 100; k++)
                if (inotify_add_watch(fd, "/box", IN_ALL_EVENTS) >= 0) watches++;
        }
    }
    SAY("epoll=%d\ninotify=%d\nwatches=%d\n", ep, in, watches);
    return 0;
}
