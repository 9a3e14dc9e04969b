/* DSK-01: write one file forever. argv[1] = "ignore" ignores SIGXFSZ and reports the write errno and
 * the size reached; then also tries to grow the file with lseek+write, pwrite, ftruncate and fallocate. */
#include "adv.h"

int main(int argc, char **argv) {
    int ignore = argc > 1 && strcmp(argv[1], "ignore") == 0;
    if (ignore) signal(SIGXFSZ, SIG_IGN);
    int fd = open("big.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static char block[64 << 10];
    memset(block, 'b', sizeof block);
    int err = 0;
    for (;;) {
        ssize_t w = write(fd, block, sizeof block);
        if (w < 0) {
            err = errno;
            break;
        }
    }
    struct stat st;
    fstat(fd, &st);
    SAY("write=%s\nsize=%lld\n", ename(err), (long long)st.st_size);
    TRY("pwrite_1t", pwrite(fd, "x", 1, (off_t)1 << 40));
    TRY("ftruncate_1t", ftruncate(fd, (off_t)1 << 40));
    TRY("fallocate_10g", fallocate(fd, 0, 0, (off_t)10 << 30));
    lseek(fd, (off_t)1 << 30, SEEK_SET);
    TRY("write_at_1g", write(fd, "x", 1));
    return 0;
}
