/* PR-03: double fork + setsid + ignore every catchable signal + close stdio, then live forever while
 * the parent exits 0 at once. */
#include "adv.h"

int main(void) {
    pid_t p = fork();
    if (p == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        for (int s = 1; s < NSIG; s++) signal(s, SIG_IGN);
        close(0);
        close(1);
        close(2);
        chdir("/");
        setpgid(0, 0);
        for (;;) sleep(1);
    }
    waitpid(p, NULL, 0);
    SAY("spawned=1\n");
    return 0;
}
