/* TM-02: sleep to dodge a CPU limit. */
#include "adv.h"

int main(void) {
    SAY("sleeping=1\n");
    sleep(1000);
    return 0;
}
