/* INF-03/NET-04: host paths holding secrets, sockets or other users' data must simply not exist.
 * argv[1..] are extra paths (the planted canaries). */
#include "adv.h"

int main(int argc, char **argv) {
    const char *paths[] = {"/sys", "/sys/fs/cgroup", "/home", "/root", "/var", "/run", "/boot", "/mnt", "/srv",
                           "/opt", "/media", "/lost+found", "/work", "/etc/shadow", "/etc/sudoers", "/etc/ssh",
                           "/etc/stockade-canary", "/etc/resolv.conf", "/etc/machine-id", "/etc/environment",
                           "/var/run/docker.sock", "/run/postgresql", "/run/dbus/system_bus_socket",
                           "/root/.ssh", "/root/.aws/credentials", "/var/run/secrets/kubernetes.io",
                           "/proc/1/root/root", "/proc/1/root/etc/shadow", "/.dockerenv"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct stat st;
        char label[128];
        snprintf(label, sizeof label, "stat_%s", paths[i]);
        TRY(label, lstat(paths[i], &st));
    }
    for (int i = 1; i < argc; i++) {
        char label[256];
        snprintf(label, sizeof label, "arg_%d", i);
        TRY(label, open(argv[i], O_RDONLY));
    }
    return 0;
}
