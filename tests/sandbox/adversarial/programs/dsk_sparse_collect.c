/* DSK-02: a sparse file as large as the file-size limit allows (copy-out would expand it) and many
 * small files, so copy-out has to apply its byte and count caps. */
#include "adv.h"

int main(int argc, char **argv) {
    off_t size = (off_t)(argc > 1 ? atol(argv[1]) : 8) << 20;
    int fd = open("sparse.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    TRY("ftruncate_sparse", ftruncate(fd, size));
    close(fd);
    int made = 0;
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "small-%02d.txt", i);
        fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0 && write(fd, name, strlen(name)) > 0) made++;
        close(fd);
    }
    SAY("small=%d\n", made);
    return 0;
}
