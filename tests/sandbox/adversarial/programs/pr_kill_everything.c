/* PR-06: signal the parent, init, a guessed host pid (argv[1]: the supervisor's real pid), every
 * process with kill(-1), and finally the own process group. */
#include "adv.h"

int main(int argc, char **argv) {
    pid_t host = argc > 1 ? (pid_t)atoi(argv[1]) : 1;
    pid_t child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    SAY("pid=%d\nppid=%d\n", getpid(), getppid());
    TRY("kill_ppid_sigxcpu", kill(getppid(), SIGXCPU));
    TRY("kill_ppid_sigkill", kill(getppid(), SIGKILL));
    TRY("kill_init_sigterm", kill(1, SIGTERM));
    TRY("kill_host_pid", kill(host, SIGKILL));
    TRY("kill_host_pid_0", kill(host, 0));
    TRY("kill_pid_max", kill(4194303, SIGKILL));
    TRY("kill_all", kill(-1, SIGKILL));
    int status = 0;
    waitpid(child, &status, 0);
    SAY("child_killed=%d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    SAY("alive=1\n");
    killpg(0, SIGKILL);
    SAY("unreachable=1\n");
    return 0;
}
