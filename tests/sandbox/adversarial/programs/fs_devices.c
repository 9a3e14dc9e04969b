/* FS-11: device nodes beyond null/zero/full/random/urandom must not exist, and new ones cannot be made. */
#include "adv.h"
#include <sys/sysmacros.h>

int main(void) {
    const char *absent[] = {"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda",
                            "/dev/nvme0n1", "/dev/tty", "/dev/console", "/dev/tty0", "/dev/fuse",
                            "/dev/net/tun", "/dev/ptmx", "/dev/loop0", "/dev/loop-control", "/dev/kvm",
                            "/dev/cpu/0/msr", "/dev/log", "/dev/mqueue", "/dev/hugepages", "/dev/pts/ptmx"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "open_%s", absent[i] + 5);
        for (char *c = label; *c; c++)
            if (*c == '/') *c = '_';
        TRY(label, open(absent[i], O_RDWR));
    }
    int fd = open("/dev/full", O_WRONLY);
    TRY("write_full", write(fd, "x", 1));
    fd = open("/dev/null", O_WRONLY);
    TRY("write_null", write(fd, "x", 1));
    TRY("mknod_dev_mem", mknod("/dev/stockade-adv-pwn", S_IFCHR | 0666, makedev(1, 1)));
    TRY("mknod_box_mem", mknod("mem", S_IFCHR | 0666, makedev(1, 1)));
    TRY("mknod_box_sda", mknod("sda", S_IFBLK | 0666, makedev(8, 0)));
    TRY("open_sys_block", open("/sys/block", O_RDONLY));
    return 0;
}
