/* PR-10: ignore or catch every soft-limit signal (SIGXCPU, SIGXFSZ, SIGALRM, SIGTERM, SIGHUP, SIGINT,
 * SIGVTALRM, SIGPROF) and keep burning CPU; only the supervisor's SIGKILL can stop it. */
#include "adv.h"
#include <sys/time.h>

static volatile sig_atomic_t caught;
static void handler(int s) { caught = s; }

int main(void) {
    int sigs[] = {SIGXCPU, SIGXFSZ, SIGALRM, SIGTERM, SIGHUP, SIGINT, SIGVTALRM, SIGPROF, SIGUSR1, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], handler);
    struct itimerval it = {{0, 100000}, {0, 100000}};
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    alarm(1);
    SAY("handlers=installed\n");
    burn_forever();
}
