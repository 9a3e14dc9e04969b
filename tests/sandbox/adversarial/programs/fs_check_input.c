/* FS-01: the second stage. Its input files must be fresh regular files holding what the request sent,
 * not whatever a previous run left at those names. */
#include "adv.h"

int main(void) {
    const char *names[] = {"input.txt", "subdir/in.txt"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (lstat(names[i], &st) != 0) {
            SAY("%s=%s\n", names[i], ename(errno));
            continue;
        }
        char buf[256] = {0};
        int fd = open(names[i], O_RDONLY | O_NOFOLLOW);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        SAY("%s=%s:%s\n", names[i], S_ISREG(st.st_mode) ? "regular" : "not-regular", n > 0 ? buf : "");
    }
    struct stat st;
    SAY("tmp_input=%s\n", lstat("/tmp/input.txt", &st) == 0 ? "present" : ename(errno));
    return 0;
}
