/* DSK-06: reach the host's logs: /dev/log, /dev/kmsg, /proc/kmsg, the syslog(2) call, journald's socket. */
#include "adv.h"
#include <sys/klog.h>
#include <sys/socket.h>
#include <sys/un.h>

static int unix_connect(const char *path) {
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    return connect(s, (struct sockaddr *)&a, sizeof a);
}

int main(void) {
    TRY("connect_dev_log", unix_connect("/dev/log"));
    TRY("connect_journald", unix_connect("/run/systemd/journal/socket"));
    TRY("open_dev_kmsg", open("/dev/kmsg", O_WRONLY));
    TRY("open_proc_kmsg", open("/proc/kmsg", O_RDONLY));
    char buf[256];
    TRY("klogctl_read_all", klogctl(3, buf, sizeof buf));
    TRY("klogctl_console_level", klogctl(8, NULL, 7));
    return 0;
}
