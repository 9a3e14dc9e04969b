/* Shared helpers for Stockade's adversarial box programs (compiled on the host, run in a box).
 * Programs print one `label=RESULT` line per attempt: RESULT is OK or the errno name, so the tests
 * can assert the exact defence and not only the verdict. */
#ifndef ADV_H
#define ADV_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline const char *ename(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "EUNKNOWN";
}

/* Evaluate a call that returns -1 on failure; print label=OK or label=ERRNO. Returns the call's value. */
#define TRY(label, expr)                                                   \
    ({                                                                     \
        errno = 0;                                                         \
        long _r = (long)(expr);                                            \
        if (_r == -1)                                                      \
            printf("%s=%s\n", (label), ename(errno));                      \
        else                                                               \
            printf("%s=OK\n", (label));                                    \
        fflush(stdout);                                                    \
        _r;                                                                \
    })

#define SAY(...)                  \
    do {                          \
        printf(__VA_ARGS__);      \
        fflush(stdout);           \
    } while (0)

/* Busy-burn CPU without syscalls, in a way the compiler cannot remove. */
static inline void burn_forever(void) {
    volatile unsigned long x = 0;
    for (;;) x++;
}

/* Write all of buf to fd; returns 0 or the errno of the failing write. */
static inline int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
#endif
