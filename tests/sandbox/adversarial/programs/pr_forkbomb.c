/* PR-01: the classic fork bomb: every process forks forever and never waits. */
#include "adv.h"

int main(void) {
    SAY("bomb=start\n");
    for (;;) fork();
}
