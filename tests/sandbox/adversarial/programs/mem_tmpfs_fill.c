/* MEM-03/DSK-01: fill a directory (argv[1]: /tmp, /dev/shm or /box) with 512 KiB files until the
 * filesystem refuses; report how much fit and the errno. */
#include "adv.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    static char block[64 << 10];
    memset(block, 'f', sizeof block);
    long total = 0;
    int err = 0;
    for (int i = 0; !err; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/fill-%d", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            err = errno;
            break;
        }
        for (int k = 0; k < 8; k++) {
            ssize_t w = write(fd, block, sizeof block);
            if (w < 0) {
                err = errno;
                break;
            }
            total += w;
            if (w < (ssize_t)sizeof block) {
                err = ENOSPC;
                break;
            }
        }
        close(fd);
    }
    SAY("fill=%s\nkib=%ld\n", ename(err), total >> 10);
    return 0;
}
