/* PR-05: fork children that exit at once and are never reaped, until fork fails. */
#include "adv.h"

int main(void) {
    signal(SIGCHLD, SIG_DFL);
    int n = 0;
    for (;;) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p < 0) {
            SAY("zombies=%d\nfork=%s\n", n, ename(errno));
            break;
        }
        n++;
    }
    usleep(100 * 1000);
    return 0;
}
