/* OUT-05/OUT-06: choose the exit status or the terminating signal (argv[1] "exit" or "signal",
 * argv[2] the number). An exit status of 128+N must not pass for "killed by signal N": exit(152) is not
 * a CPU timeout (SIGXCPU), exit(153) not a file-size limit (SIGXFSZ), exit(159) not a blocked syscall. */
#include "adv.h"

int main(int argc, char **argv) {
    int n = argc > 2 ? atoi(argv[2]) : 0;
    if (argc > 1 && strcmp(argv[1], "signal") == 0) {
        signal(n, SIG_DFL);
        kill(getpid(), n);
        for (;;) pause();
    }
    return n;
}
