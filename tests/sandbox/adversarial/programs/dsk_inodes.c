/* DSK-03: create empty files, then directories, then symlinks until the inode cap refuses. */
#include "adv.h"

int main(void) {
    int files = 0, dirs = 0, links = 0, err = 0;
    char name[64];
    for (;; files++) {
        snprintf(name, sizeof name, "/tmp/f%d", files);
        int fd = open(name, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) {
            err = errno;
            break;
        }
        close(fd);
    }
    SAY("files=%d\nfiles_err=%s\n", files, ename(err));
    for (int i = 0; i < 50; i++) unlink((snprintf(name, sizeof name, "/tmp/f%d", i), name));
    for (;; dirs++) {
        snprintf(name, sizeof name, "d%d", dirs);
        if (mkdir(name, 0755) != 0) {
            err = errno;
            break;
        }
    }
    SAY("dirs=%d\ndirs_err=%s\n", dirs, ename(err));
    for (;; links++) {
        snprintf(name, sizeof name, "/dev/shm/l%d", links);
        if (symlink("/box", name) != 0) {
            err = errno;
            break;
        }
    }
    SAY("links=%d\nlinks_err=%s\n", links, ename(err));
    return 0;
}
