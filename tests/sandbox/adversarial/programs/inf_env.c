/* INF-01: print the whole environment, and the raw /proc/self/environ. */
#include "adv.h"

extern char **environ;

int main(void) {
    for (char **e = environ; *e; e++) SAY("ENV %s\n", *e);
    char buf[8192];
    int fd = open("/proc/self/environ", O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i]) buf[i] = '\n';
    SAY("PROCENV_BYTES=%zd\n", n);
    write(1, buf, n > 0 ? (size_t)n : 0);
    return 0;
}
