/* FS-11/K-13: make device nodes in every writable place (and a FIFO and a socket node, which are fine). */
#include "adv.h"
#include <sys/sysmacros.h>

int main(void) {
    TRY("mknod_char_box", mknod("null2", S_IFCHR | 0666, makedev(1, 3)));
    TRY("mknod_char_tmp", mknod("/tmp/kmem", S_IFCHR | 0666, makedev(1, 2)));
    TRY("mknod_block_shm", mknod("/dev/shm/vda", S_IFBLK | 0666, makedev(253, 0)));
    TRY("mknod_char_dev", mknod("/dev/mem", S_IFCHR | 0666, makedev(1, 1)));
    TRY("mknod_whiteout", mknod("wh", S_IFCHR | 0666, makedev(0, 0)));
    TRY("mknod_fifo", mknod("fifo", S_IFIFO | 0666, 0));
    TRY("mknod_sock", mknod("sock", S_IFSOCK | 0666, 0));
    TRY("mknod_reg", mknod("reg", S_IFREG | 0666, 0));
    return 0;
}
