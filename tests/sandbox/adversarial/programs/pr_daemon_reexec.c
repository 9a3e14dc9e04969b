/* PR-03 variant: the daemon keeps stdout/stderr open (so a supervisor that waits for EOF would hang),
 * renames itself like a kernel thread and re-execs itself once, then burns CPU. */
#include "adv.h"
#include <sys/prctl.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        prctl(PR_SET_NAME, "kworker/0:1", 0, 0, 0);
        for (int s = 1; s < NSIG; s++) signal(s, SIG_IGN);
        burn_forever();
    }
    if (fork() == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        char *args[] = {"[kworker/0:1]", "child", NULL};
        execv("/proc/self/exe", args);
        _exit(1);
    }
    usleep(50 * 1000);
    SAY("spawned=1\n");
    return 0;
}
