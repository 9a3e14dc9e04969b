/* TM-01: a single-threaded busy loop without syscalls. */
#include "adv.h"

int main(void) {
    SAY("busy=1\n");
    burn_forever();
}
