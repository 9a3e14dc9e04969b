/* K-02/K-03: remount read-only binds writable, mount fresh procfs/sysfs/tmpfs, mount a cgroup v1
 * hierarchy (the release_agent route), unmount masks, chroot, pivot_root and the new mount API. */
#include "adv.h"
#include <sys/mount.h>

int main(void) {
    TRY("remount_root_rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
    TRY("remount_usr_rw", mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
    TRY("mount_tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
    TRY("mount_proc", mount("proc", "/tmp", "proc", 0, NULL));
    TRY("mount_sysfs", mount("sysfs", "/tmp", "sysfs", 0, NULL));
    TRY("mount_cgroup_v1", mount("cgroup", "/tmp", "cgroup", 0, "memory"));
    TRY("mount_cgroup2", mount("cgroup2", "/tmp", "cgroup2", 0, NULL));
    TRY("mount_bind_proc", mount("/proc", "/tmp", NULL, MS_BIND, NULL));
    TRY("umount_proc_mask", umount2("/proc/kcore", MNT_DETACH));
    TRY("umount_root", umount2("/", MNT_DETACH));
    TRY("chroot", chroot("/tmp"));
    TRY("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    TRY("fsopen", syscall(430 /* fsopen */, "tmpfs", 0));
    TRY("fspick", syscall(433 /* fspick */, AT_FDCWD, "/", 0));
    TRY("open_tree", syscall(428 /* open_tree */, AT_FDCWD, "/usr", 1 /* OPEN_TREE_CLONE */));
    TRY("move_mount", syscall(429 /* move_mount */, AT_FDCWD, "/tmp", AT_FDCWD, "/box", 0));
    TRY("mount_setattr", syscall(442 /* mount_setattr */, AT_FDCWD, "/", 0, NULL, 0));
    return 0;
}
