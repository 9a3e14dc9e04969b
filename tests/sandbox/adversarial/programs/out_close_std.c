/* OUT-08: close stdin/stdout/stderr at once, keep working for a while, then exit 0 (a supervisor that
 * equates EOF with exit, or blocks on a closed pipe, misreports this). */
#include "adv.h"

int main(void) {
    write(1, "before-close\n", 13);
    close(0);
    close(1);
    close(2);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 50000000UL; i++) x += i;
    usleep(300 * 1000);
    return 0;
}
