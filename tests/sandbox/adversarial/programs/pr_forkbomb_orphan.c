/* PR-01 variant: the parent returns at once with a clean exit while its child keeps forking. */
#include "adv.h"

int main(void) {
    if (fork() == 0) {
        setsid();
        for (;;) fork();
    }
    usleep(50 * 1000);
    SAY("parent=done\n");
    return 0;
}
