/* MEM-02: reserve a terabyte without touching it, touch it sparsely, and grow brk by a gigabyte
 * without writing. Only touched pages count, so this stays far below the limit. */
#include "adv.h"
#include <sys/mman.h>

int main(void) {
    size_t len = (size_t)1 << 40;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    SAY("mmap_1t=%s\n", p == MAP_FAILED ? ename(errno) : "OK");
    int touched = 0;
    if (p != MAP_FAILED)
        for (size_t off = 0; off < len && touched < 256; off += (size_t)1 << 32, touched++) p[off] = 1;
    SAY("touched=%d\n", touched);
    void *b = sbrk(0);
    SAY("brk_1g=%s\n", sbrk((intptr_t)1 << 30) == (void *)-1 ? ename(errno) : "OK");
    (void)b;
    return 0;
}
