/* INF-02: walk /proc for every process: cmdline, environ, status, fds and their link targets, and
 * dump all of it (a canary anywhere in another process's memory-visible data would show up here). */
#include "adv.h"
#include <ctype.h>
#include <dirent.h>

static void dump(const char *pid, const char *what) {
    char path[256], buf[16384];
    snprintf(path, sizeof path, "/proc/%s/%s", pid, what);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        SAY("%s_%s=%s\n", pid, what, ename(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i] || buf[i] == '\n') buf[i] = ' ';
    SAY("%s_%s=%.*s\n", pid, what, (int)(n > 0 ? n : 0), buf);
}

int main(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    char pids[1024] = "";
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        strcat(pids, e->d_name);
        strcat(pids, ",");
        dump(e->d_name, "cmdline");
        dump(e->d_name, "environ");
        dump(e->d_name, "status");
        char fdpath[256];
        snprintf(fdpath, sizeof fdpath, "/proc/%s/fd", e->d_name);
        DIR *fds = opendir(fdpath);
        if (!fds) {
            SAY("%s_fds=%s\n", e->d_name, ename(errno));
            continue;
        }
        struct dirent *f;
        while ((f = readdir(fds))) {
            if (f->d_name[0] == '.') continue;
            char lp[512], target[512] = "";
            snprintf(lp, sizeof lp, "%s/%s", fdpath, f->d_name);
            ssize_t n = readlink(lp, target, sizeof target - 1);
            SAY("%s_fd_%s=%s\n", e->d_name, f->d_name, n > 0 ? target : ename(errno));
        }
        closedir(fds);
    }
    SAY("pids=%s\n", pids);
    return 0;
}
