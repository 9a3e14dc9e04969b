/* FS-10/K-10: try to modify host files that are visible read-only in the box (toolchain dirs, the
 * sentinel bound under /usr, /etc pieces) and to create files outside the writable dirs. argv[1] = sentinel. */
#include "adv.h"
#include <sys/time.h>

int main(int argc, char **argv) {
    const char *sentinel = argc > 1 ? argv[1] : "/usr/bin/env";
    TRY("open_rw_sentinel", open(sentinel, O_RDWR));
    TRY("open_trunc_sentinel", open(sentinel, O_WRONLY | O_TRUNC));
    TRY("unlink_sentinel", unlink(sentinel));
    TRY("chmod_sentinel", chmod(sentinel, 04777));
    TRY("chown_sentinel", chown(sentinel, 1000, 1000));
    TRY("utimes_sentinel", utimes(sentinel, NULL));
    TRY("truncate_sentinel", truncate(sentinel, 0));
    TRY("rename_sentinel", rename(sentinel, "/usr/share/stockade-adv-pwn"));
    TRY("open_rw_rm", open("/usr/bin/rm", O_RDWR));
    TRY("open_rw_sh", open("/bin/sh", O_WRONLY));
    TRY("open_rw_passwd", open("/etc/passwd", O_WRONLY | O_APPEND));
    TRY("create_etc", open("/etc/stockade-adv-pwn", O_WRONLY | O_CREAT, 0644));
    TRY("create_usr", open("/usr/stockade-adv-pwn", O_WRONLY | O_CREAT, 0644));
    TRY("create_root", open("/stockade-adv-pwn", O_WRONLY | O_CREAT, 0644));
    TRY("mkdir_root", mkdir("/stockade-adv-pwn-dir", 0755));
    TRY("symlink_root", symlink("/box", "/stockade-adv-pwn-link"));
    TRY("create_dev", open("/dev/stockade-adv-pwn", O_WRONLY | O_CREAT, 0644));
    TRY("create_proc", open("/proc/stockade-adv-pwn", O_WRONLY | O_CREAT, 0644));
    TRY("unlink_bin_link", unlink("/bin"));
    return 0;
}
