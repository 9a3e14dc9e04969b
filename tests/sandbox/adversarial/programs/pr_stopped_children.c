/* PR-04: children that are stopped, that block every signal, that sit in vfork waiting on a pipe the
 * child itself holds, and that are traced-stopped looking; the parent exits 0. */
#include "adv.h"

int main(void) {
    if (fork() == 0) {
        raise(SIGSTOP);
        for (;;) pause();
    }
    if (fork() == 0) {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        for (;;) pause();
    }
    if (fork() == 0) {
        int p[2];
        pipe(p);
        if (vfork() == 0) {
            char c;
            read(p[0], &c, 1); /* blocks forever: this process holds the write end too */
            _exit(0);
        }
        _exit(0);
    }
    if (fork() == 0) {
        setsid();
        kill(getpid(), SIGTSTP);
        for (;;) pause();
    }
    usleep(100 * 1000);
    SAY("children=4\n");
    return 0;
}
