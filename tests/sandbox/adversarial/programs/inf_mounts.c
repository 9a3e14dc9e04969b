/* INF-04: the box's mount table and cgroup view: print every mount point with its options and the
 * /proc/self/cgroup lines. */
#include "adv.h"

static ssize_t slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    size_t total = 0;
    ssize_t n;
    while (fd >= 0 && total < cap - 1 && (n = read(fd, buf + total, cap - 1 - total)) > 0) total += (size_t)n;
    buf[total] = 0;
    if (fd >= 0) close(fd);
    return (ssize_t)total;
}

int main(void) {
    static char buf[1 << 18];
    slurp("/proc/self/mountinfo", buf, sizeof buf);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char mp[512], opts[512], fstype[64], src[512], sopts[512];
        if (sscanf(line, "%*s %*s %*s %*s %511s %511s", mp, opts) != 2) continue;
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%63s %511s %511s", fstype, src, sopts) != 3) continue;
        SAY("MOUNT %s %s %s %s\n", mp, opts, fstype, sopts);
    }
    slurp("/proc/self/cgroup", buf, sizeof buf);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) SAY("CGROUP %s\n", line);
    return 0;
}
