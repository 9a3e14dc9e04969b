/* PR-06/INF-02: probe every pid up to argv[1] with signal 0 and report which ones this box can see;
 * then send SIGKILL/SIGSTOP to all of them except itself. */
#include "adv.h"

int main(int argc, char **argv) {
    int max = argc > 1 ? atoi(argv[1]) : 32768;
    int visible = 0, esrch = 0, eperm = 0, other = 0;
    char list[4096] = "";
    for (int p = 1; p <= max; p++) {
        if (kill(p, 0) == 0) {
            visible++;
            if (strlen(list) < sizeof list - 16) sprintf(list + strlen(list), "%d,", p);
        } else if (errno == ESRCH)
            esrch++;
        else if (errno == EPERM)
            eperm++;
        else
            other++;
    }
    SAY("visible=%d\nvisible_pids=%s\neperm=%d\nother=%d\n", visible, list, eperm, other);
    for (int p = 1; p <= max; p++)
        if (p != getpid()) {
            kill(p, SIGSTOP);
            kill(p, SIGKILL);
        }
    SAY("survived=1\n");
    return 0;
}
