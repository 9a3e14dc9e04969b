/* FS-07: a directory chain far deeper than PATH_MAX (and than any walker's depth cap), then every
 * directory on the way back up made mode 000, so a naive host `rm -rf` or walker fails. */
#include "adv.h"

int main(void) {
    char name[201];
    memset(name, 'd', 200);
    name[200] = 0;
    int depth = 0;
    while (depth < 150) {
        if (mkdir(name, 0700) != 0 || chdir(name) != 0) {
            SAY("stop_errno=%s\n", ename(errno));
            break;
        }
        depth++;
    }
    int fd = open("bottom.txt", O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) {
        write_all(fd, "bottom\n", 7);
        close(fd);
    }
    char buf[8192];
    TRY("getcwd_deep", getcwd(buf, sizeof buf) ? 0 : -1);
    SAY("depth=%d\n", depth);
    for (int i = 0; i < depth; i++) {
        chmod(".", 0);
        if (chdir("..") != 0) break;
    }
    chmod(name, 0);
    SAY("chmod000=done\n");
    return 0;
}
