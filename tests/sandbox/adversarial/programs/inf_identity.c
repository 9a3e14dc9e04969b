/* INF/CR-04/FS-10: who am I: ids, groups, host name, capabilities, no_new_privs, seccomp mode, and
 * attempts to become someone else. */
#include "adv.h"
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

int main(void) {
    SAY("uid=%d\neuid=%d\ngid=%d\negid=%d\n", getuid(), geteuid(), getgid(), getegid());
    gid_t groups[64];
    int n = getgroups(64, groups);
    SAY("ngroups=%d\n", n);
    for (int i = 0; i < n; i++) SAY("group_%d=%d\n", i, groups[i]);
    struct utsname u;
    uname(&u);
    SAY("nodename=%s\ndomainname=%s\n", u.nodename, u.domainname);
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t len = read(fd, buf, sizeof buf - 1);
    buf[len > 0 ? len : 0] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!strncmp(line, "Cap", 3) || !strcmp(line, "NoNewPrivs") || !strcmp(line, "Seccomp")) SAY("%s=%s\n", line, v);
    }
    SAY("prctl_nnp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    TRY("clear_nnp", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0));
    TRY("setuid0", setuid(0));
    TRY("setgid0", setgid(0));
    TRY("setresuid0", setresuid(0, 0, 0));
    gid_t zero = 0;
    TRY("setgroups0", setgroups(1, &zero));
    setfsuid(0);
    SAY("fsuid_after_setfsuid0=%d\n", setfsuid(-1));
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {{0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff, 0xffffffff}};
    TRY("capset_all", syscall(SYS_capset, &h, d));
    TRY("ambient_raise", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 21, 0, 0));
    TRY("sethostname", sethostname("pwned", 5));
    return 0;
}
