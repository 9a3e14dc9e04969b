/* MEM-03 (moby #39004): a /dev/shm file mapped bigger than the tmpfs and touched through the mapping,
 * hoping the pages escape both the tmpfs size and the memory limit. */
#include "adv.h"
#include <sys/mman.h>

int main(void) {
    size_t len = 48 << 20;
    int fd = shm_open("/stockade-adv-shm", O_RDWR | O_CREAT, 0600);
    TRY("ftruncate", ftruncate(fd, (off_t)len));
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    SAY("mapped=%d\n", p != MAP_FAILED);
    for (size_t i = 0; i < len; i += 4096) {
        p[i] = 1;
        if (i % (4 << 20) == 0) SAY("mib=%zu\n", i >> 20);
    }
    SAY("touched=all\n");
    return 0;
}
