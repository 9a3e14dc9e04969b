/* NET-01/INF-04: which network interfaces, routes and sockets does the box see? */
#include "adv.h"
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static void dump(const char *path) {
    char buf[8192];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    int lines = 0;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n') lines++;
    SAY("lines_%s=%d\n", path + 10, n < 0 ? -1 : lines);
}

int main(void) {
    struct ifaddrs *ifa;
    /* glibc asks netlink for this, and netlink sockets are refused in the box. */
    TRY("getifaddrs", getifaddrs(&ifa));
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq reqs[32];
    struct ifconf conf = {.ifc_len = sizeof reqs, .ifc_req = reqs};
    char names[1024] = "";
    if (ioctl(s, SIOCGIFCONF, &conf) == 0)
        for (size_t i = 0; i < conf.ifc_len / sizeof(struct ifreq); i++) {
            strcat(names, reqs[i].ifr_name);
            strcat(names, ",");
            struct ifreq fl = reqs[i];
            ioctl(s, SIOCGIFFLAGS, &fl);
            SAY("up_%s=%d\n", reqs[i].ifr_name, (fl.ifr_flags & IFF_UP) != 0);
        }
    SAY("ifaces=%s\n", names);
    /* Interfaces that are down have no address: probe a few well-known names by index, too. */
    const char *probe[] = {"eth0", "ens3", "docker0", "wlan0", "tap0", "veth0"};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        struct ifreq r = {0};
        strcpy(r.ifr_name, probe[i]);
        char label[32];
        snprintf(label, sizeof label, "ifindex_%s", probe[i]);
        TRY(label, ioctl(s, SIOCGIFINDEX, &r));
    }
    dump("/proc/net/dev");      /* 2 header lines + lo */
    dump("/proc/net/route");    /* header only */
    dump("/proc/net/tcp");      /* header only: no host listeners */
    dump("/proc/net/tcp6");
    dump("/proc/net/udp");
    dump("/proc/net/unix");     /* header only: no host abstract sockets */
    return 0;
}
