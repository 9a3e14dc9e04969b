/* DSK-04: open descriptors until EMFILE, then try every other kind of fd, and dup beyond the limit. */
#include "adv.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>

int main(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int n = 0, err = 0;
    for (;;) {
        if (open("/dev/null", O_RDONLY) < 0) {
            err = errno;
            break;
        }
        n++;
    }
    SAY("nofile=%ld\nopened=%d\nopen=%s\n", (long)rl.rlim_cur, n, ename(err));
    int p[2];
    TRY("pipe", pipe(p));
    TRY("socket", socket(AF_INET, SOCK_STREAM, 0));
    TRY("eventfd", eventfd(0, 0));
    TRY("epoll", epoll_create1(0));
    TRY("memfd", memfd_create("x", 0));
    TRY("dup2_high", dup2(0, 100000));
    TRY("fcntl_dupfd_high", fcntl(0, F_DUPFD, 100000));
    return 0;
}
