/* PR-04: the box's main process stops itself; only the wall clock and a SIGKILL can end it. */
#include "adv.h"

int main(void) {
    SAY("stopping=1\n");
    raise(SIGSTOP);
    SAY("resumed=1\n");
    return 0;
}
