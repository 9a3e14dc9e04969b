/* Issue 27 section 2: watching the shared read-only view. inotify and fanotify report other processes'
 * opens of a watched inode; the box's /usr (and its whole root) shares inodes with the host and with
 * every other box, so every way of getting a watch must fail. The box's own tmpfs is tried as well:
 * the policy refuses inotify as a whole, not per path (seccomp cannot read the path). */
#include "adv.h"
#include <sys/fanotify.h>
#include <sys/inotify.h>

int main(void) {
    TRY("inotify_init", syscall(SYS_inotify_init));
    int fd = TRY("inotify_init1", syscall(SYS_inotify_init1, IN_CLOEXEC));
    /* With no inotify fd to be had, add_watch is tried on a plain fd: the filter must refuse it first. */
    TRY("inotify_add_watch_shared", syscall(SYS_inotify_add_watch, fd >= 0 ? fd : 0, "/usr/share/zoneinfo",
                                            IN_OPEN | IN_ACCESS));
    TRY("inotify_add_watch_own_tmp", syscall(SYS_inotify_add_watch, fd >= 0 ? fd : 0, "/tmp", IN_OPEN));
    int fan = TRY("fanotify_init", syscall(SYS_fanotify_init, FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY));
    TRY("fanotify_mark", syscall(SYS_fanotify_mark, fan >= 0 ? fan : 0, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD,
                                 AT_FDCWD, "/usr/share/zoneinfo"));
    return 0;
}
