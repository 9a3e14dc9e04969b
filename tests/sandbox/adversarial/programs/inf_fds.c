/* CR-03: descriptors inherited from the supervisor or bubblewrap (seccomp fd, pipes, dir fds). */
#include "adv.h"
#include <dirent.h>

int main(void) {
    char list[1024] = "";
    for (int fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) != -1) {
            char p[64], t[256] = "";
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            readlink(p, t, sizeof t - 1);
            SAY("fd_%d=%s\n", fd, t);
            sprintf(list + strlen(list), "%d,", fd);
        }
    }
    SAY("open=%s\n", list);
    /* An inherited directory fd would let openat(fd, "..") climb out; try it on whatever is open. */
    for (int fd = 3; fd < 64; fd++) {
        int up = openat(fd, "..", O_RDONLY | O_DIRECTORY);
        if (up >= 0) SAY("escape_via_fd_%d=OK\n", fd);
    }
    return 0;
}
