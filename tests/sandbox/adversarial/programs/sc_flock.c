/* SC-01: a covert channel between two concurrent boxes through advisory locks on a shared read-only
 * inode (a file under /usr that every box sees). argv[1] = "hold": take the locks, then wait;
 * "probe": wait a moment, then test whether someone else holds them. */
#include "adv.h"
#include <sys/file.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "probe";
    int fd = open("/usr/bin/true", O_RDONLY);
    struct flock ofd = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    if (strcmp(mode, "hold") == 0) {
        TRY("flock_ex", flock(fd, LOCK_EX));
        TRY("ofd_rdlock", fcntl(fd, F_OFD_SETLK, &ofd));
        sleep(2);
        return 0;
    }
    usleep(600 * 1000);
    TRY("flock_probe", flock(fd, LOCK_EX | LOCK_NB));
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    TRY("ofd_getlk", fcntl(fd, F_OFD_GETLK, &q));
    SAY("ofd_conflict=%d\n", q.l_type != F_UNLCK);
    return 0;
}
