/* Issue 27 section 4: locks on the shared read-only view. Usage: sh_lock LOCKFILE GOFILE [DIR...]
 * Takes flock(LOCK_EX) and a POSIX read lock on LOCKFILE (a file of the shared view, opened read-only),
 * flock(LOCK_EX) on every regular file directly in each DIR (toolchain files other boxes read), says
 * `locked=N`, then holds everything until the host takes a lock on GOFILE (which the box sees as its
 * own LOCK_NB failing: a host-to-box channel) and exits. */
#include "adv.h"
#include <dirent.h>
#include <sys/file.h>

static int lock_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0) {
            n++;  /* the fd stays open: the lock lives as long as the box */
        } else {
            close(fd);
        }
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 3;
    TRY("flock_ex", flock(fd, LOCK_EX | LOCK_NB));
    struct flock rd = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    TRY("posix_read_lock", fcntl(fd, F_SETLK, &rd));
    int n = 0;
    for (int i = 3; i < argc; i++) n += lock_dir(argv[i]);
    SAY("locked=%d\n", n);
    for (;;) {
        int go = open(argv[2], O_RDONLY);
        if (go < 0) return 4;
        int r = flock(go, LOCK_SH | LOCK_NB);
        int e = errno;
        close(go);
        if (r != 0) {
            SAY("host_signal=%s\n", ename(e));
            return 0;
        }
        usleep(5000);
    }
}
