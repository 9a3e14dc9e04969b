/* OUT-01 boundary: write exactly argv[1] bytes to stdout (in odd-sized pieces) and exit 0. */
#include "adv.h"

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    static char buf[7777];
    memset(buf, 'e', sizeof buf);
    while (n > 0) {
        long k = n < (long)sizeof buf ? n : (long)sizeof buf;
        if (write_all(1, buf, (size_t)k)) return 3;
        n -= k;
    }
    return 0;
}
