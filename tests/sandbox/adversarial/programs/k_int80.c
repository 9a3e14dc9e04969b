/* K-09: the i386 syscall entry from a 64-bit process (int $0x80): getuid32 (199) then exit (1).
 * A filter written for x86_64 numbers alone would not see it; the arch check must kill. */
#include "adv.h"

int main(void) {
    SAY("before=1\n");
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(199L) : "memory");
    SAY("int80_ret=%ld\n", ret);
    __asm__ volatile("int $0x80" : : "a"(1L), "b"(0L) : "memory");
    return 0;
}
