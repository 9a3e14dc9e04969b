/* TM-03/TM-04: argv[1] child processes burning CPU; argv[2] = "orphan" makes them double-forked orphans
 * that are never waited for (RUSAGE_CHILDREN would miss them), while the parent only sleeps. */
#include "adv.h"

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    int orphan = argc > 2 && strcmp(argv[2], "orphan") == 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            if (orphan) {
                setsid();
                if (fork() != 0) _exit(0);
            }
            burn_forever();
        }
        if (orphan) waitpid(p, NULL, 0);
    }
    SAY("children=%d\n", n);
    for (;;) pause();
}
