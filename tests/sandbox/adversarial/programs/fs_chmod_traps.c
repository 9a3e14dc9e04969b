/* FS-07: trees the host cannot read or delete with plain permissions: mode-000 dirs and files, a
 * mode-000 /box, /tmp and /dev/shm, and an attempt at the immutable/append-only inode flags. */
#include "adv.h"
#include <linux/fs.h>
#include <sys/ioctl.h>

static void mkfile(const char *p) {
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) {
        write_all(fd, "trap\n", 5);
        close(fd);
    }
}

int main(void) {
    mkdir("a", 0755);
    mkdir("a/b", 0755);
    mkdir("a/b/c", 0755);
    mkfile("a/b/c/f");
    mkfile("a/b/g");
    mkfile("/tmp/t");
    mkfile("/dev/shm/s");
    int fd = open("a/b/g", O_RDONLY);
    int flags = FS_IMMUTABLE_FL;
    TRY("ioctl_immutable", ioctl(fd, FS_IOC_SETFLAGS, &flags));
    flags = FS_APPEND_FL;
    TRY("ioctl_append", ioctl(fd, FS_IOC_SETFLAGS, &flags));
    close(fd);
    TRY("chmod_file", chmod("a/b/c/f", 0));
    TRY("chmod_c", chmod("a/b/c", 0));
    TRY("chmod_b", chmod("a/b", 0));
    TRY("chmod_a", chmod("a", 0));
    TRY("chmod_tmp", chmod("/tmp", 0));
    TRY("chmod_shm", chmod("/dev/shm", 0));
    TRY("chmod_box", chmod("/box", 0));
    TRY("chown_box", chown("/box", 0, 0));
    return 0;
}
