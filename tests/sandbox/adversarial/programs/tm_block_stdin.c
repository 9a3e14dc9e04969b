/* TM-02: read stdin to the end (the box gets a finite snapshot), then block on reads that never finish:
 * a pipe whose write end the process holds itself, and poll() with no timeout on it. */
#include "adv.h"
#include <poll.h>

int main(void) {
    char buf[4096];
    ssize_t total = 0, n;
    while ((n = read(0, buf, sizeof buf)) > 0) total += n;
    SAY("stdin_bytes=%zd\nstdin_end=%s\n", total, n == 0 ? "EOF" : ename(errno));
    int p[2];
    pipe(p);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    poll(&pf, 1, 300);
    SAY("blocking=1\n");
    read(p[0], buf, 1);
    SAY("unblocked=1\n");
    return 0;
}
