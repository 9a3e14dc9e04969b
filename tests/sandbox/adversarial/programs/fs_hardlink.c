/* FS-05: hard-link host files and device nodes into the writable box dir. The box is its own tmpfs, so
 * every cross-filesystem link must fail with EXDEV (or EPERM), never succeed. argv[1] = sentinel path. */
#include "adv.h"

int main(int argc, char **argv) {
    TRY("link_passwd", link("/etc/passwd", "hl_passwd"));
    TRY("link_rm", link("/usr/bin/rm", "hl_rm"));
    TRY("link_sh", link("/bin/sh", "hl_sh"));
    TRY("link_null", link("/dev/null", "hl_null"));
    TRY("link_zero", link("/dev/zero", "/tmp/hl_zero"));
    TRY("link_sentinel", link(argc > 1 ? argv[1] : "/usr/bin/env", "hl_sentinel"));
    TRY("link_proc_exe", link("/proc/self/exe", "hl_exe"));
    int fd = open("/usr/bin/rm", O_RDONLY);
    TRY("linkat_empty_path", linkat(fd, "", AT_FDCWD, "hl_fd", AT_EMPTY_PATH));
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    TRY("linkat_proc_fd", linkat(AT_FDCWD, p, AT_FDCWD, "hl_procfd", AT_SYMLINK_FOLLOW));
    /* Inside the box tmpfs a hard link is fine. */
    close(open("own", O_WRONLY | O_CREAT, 0644));
    TRY("link_own", link("own", "own_link"));
    return 0;
}
