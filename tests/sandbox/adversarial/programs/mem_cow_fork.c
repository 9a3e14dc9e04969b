/* MEM-07: allocate 24 MiB, fork 4 children and make each rewrite every page (copy-on-write
 * multiplies it to ~120 MiB across the tree, while each process alone stays small). */
#include "adv.h"

int main(void) {
    size_t len = 24 << 20;
    char *p = malloc(len);
    memset(p, 1, len);
    SAY("parent=%zuMiB\n", len >> 20);
    for (int i = 0; i < 4; i++) {
        if (fork() == 0) {
            for (size_t j = 0; j < len; j += 4096) p[j] = (char)(i + 2);
            for (;;) pause();
        }
    }
    for (;;) pause();
}
