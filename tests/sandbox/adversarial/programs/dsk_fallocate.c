/* DSK-02: fallocate(10 GiB) (argv[1]="fallocate") or a sparse ftruncate to 1 TiB ("ftruncate"),
 * without ignoring SIGXFSZ. */
#include "adv.h"

int main(int argc, char **argv) {
    int fd = open("huge.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    SAY("start=1\n");
    if (argc > 1 && strcmp(argv[1], "ftruncate") == 0)
        TRY("ftruncate_1t", ftruncate(fd, (off_t)1 << 40));
    else
        TRY("fallocate_10g", fallocate(fd, 0, 0, (off_t)10 << 30));
    return 0;
}
