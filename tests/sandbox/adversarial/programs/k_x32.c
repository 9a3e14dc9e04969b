/* K-09: an x32-ABI syscall number (bit 30 set) from a 64-bit process: getpid. */
#include "adv.h"

int main(void) {
    SAY("before=1\n");
    long r = syscall(0x40000000L | SYS_getpid);
    SAY("x32_ret=%ld:%s\n", r, ename(errno));
    return 0;
}
