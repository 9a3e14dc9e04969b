/* MEM-06: unbounded recursion (argv[1] = "recurse") or one huge stack array (argv[1] = "alloca"). */
#include "adv.h"
#include <alloca.h>

static int depth(int n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    return depth(n + 1) + pad[0];
}

int main(int argc, char **argv) {
    SAY("start=1\n");
    if (argc > 1 && strcmp(argv[1], "alloca") == 0) {
        size_t n = (size_t)1 << 30;
        volatile char *p = alloca(n);
        for (size_t i = 0; i < n; i += 4096) p[n - 1 - i] = 1;
        return p[0];
    }
    return depth(0);
}
