/* OUT-01: an endless flood after a recognisable prefix. argv[1]: "stdout", "stderr" or "both". */
#include "adv.h"

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "stdout";
    write(1, "BEGIN-OUT\n", 10);
    write(2, "BEGIN-ERR\n", 10);
    static char buf[8192];
    for (size_t i = 0; i < sizeof buf; i += 2) {
        buf[i] = 'y';
        buf[i + 1] = '\n';
    }
    int both = strcmp(which, "both") == 0;
    int fd = strcmp(which, "stderr") == 0 ? 2 : 1;
    for (;;) {
        write(fd, buf, sizeof buf);
        if (both) write(2, buf, sizeof buf);
    }
}
