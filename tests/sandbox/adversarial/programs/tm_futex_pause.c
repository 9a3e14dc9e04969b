/* TM-02: wait forever on a futex nobody wakes (argv[1] = "futex") or in pause() ("pause"). */
#include "adv.h"
#include <linux/futex.h>

int main(int argc, char **argv) {
    static int word = 0;
    SAY("waiting=1\n");
    if (argc > 1 && strcmp(argv[1], "pause") == 0)
        pause();
    else
        syscall(SYS_futex, &word, FUTEX_WAIT, 0, NULL, NULL, 0);
    return 0;
}
