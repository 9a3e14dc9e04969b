/* MEM-01: grow the heap 1 MiB at a time, touching every page. */
#include "adv.h"

int main(void) {
    size_t mb = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) {
            SAY("malloc=NULL\nmb=%zu\n", mb);
            return 3;
        }
        memset(p, 0xa5, 1 << 20);
        mb++;
        if (mb % 16 == 0) SAY("mb=%zu\n", mb);
    }
}
