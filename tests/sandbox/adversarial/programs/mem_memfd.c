/* MEM-03: memory outside any mount: memfd_create + ftruncate + touch every page through a mapping. */
#include "adv.h"
#include <sys/mman.h>

int main(int argc, char **argv) {
    size_t len = (size_t)(argc > 1 ? atol(argv[1]) : 256) << 20;
    int fd = memfd_create("hidden", 0);
    TRY("ftruncate", ftruncate(fd, (off_t)len));
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        SAY("mmap=%s\n", ename(errno));
        return 3;
    }
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    SAY("touched=%zu\n", len >> 20);
    return 0;
}
