/* K-04..K-08/K-13: kernel interfaces with bug-rich histories that runtimes merely probe: io_uring,
 * userfaultfd, bpf, perf_event_open, keyrings, file handles, lookup_dcookie, quotactl_fd. */
#include "adv.h"
#include <linux/perf_event.h>

int main(void) {
    char params[120] = {0};
    TRY("io_uring_setup", syscall(425, 8, params));
    TRY("io_uring_enter", syscall(426, 0, 1, 0, 0, NULL, 0));
    TRY("io_uring_register", syscall(427, 0, 0, NULL, 0));
    TRY("userfaultfd", syscall(SYS_userfaultfd, 0));
    char attr[128] = {0};
    TRY("bpf_prog_load", syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, attr, sizeof attr));
    TRY("bpf_map_create", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
    struct perf_event_attr pa = {.type = PERF_TYPE_HARDWARE, .size = sizeof pa, .config = PERF_COUNT_HW_CPU_CYCLES};
    TRY("perf_event_open", syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0));
    TRY("keyctl_join", syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "stockade-adv"));
    TRY("add_key", syscall(SYS_add_key, "user", "stockade-adv", "secret", 6, -3 /* session */));
    TRY("request_key", syscall(SYS_request_key, "user", "stockade-adv", NULL, 0));
    char handle[136] = {0};
    int mount_id;
    TRY("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/usr", handle, &mount_id, 0));
    TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY));
    TRY("lookup_dcookie", syscall(SYS_lookup_dcookie, 0ULL, NULL, 0));
    TRY("quotactl_fd", syscall(443, 0, 0, 0, NULL));
    return 0;
}
