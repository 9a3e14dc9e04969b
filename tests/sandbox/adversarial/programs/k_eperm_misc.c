/* K-13: rarely needed host-acting calls: swap, syslog, process accounting, quotas, host names, port
 * I/O, vhangup; plus calls a seccomp default-allow policy leaves to the kernel (LDT, personality,
 * NUMA page moves), printed for the record. */
#include "adv.h"
#include <asm/ldt.h>
#include <sys/personality.h>

int main(void) {
    TRY("swapon", syscall(SYS_swapon, "/box/swap", 0));
    TRY("swapoff", syscall(SYS_swapoff, "/box/swap"));
    TRY("syslog", syscall(SYS_syslog, 10, NULL, 0));
    TRY("acct", syscall(SYS_acct, "/box/acct"));
    TRY("quotactl", syscall(SYS_quotactl, 0x800002 /* Q_GETINFO user */, "/dev/vda", 0, NULL));
    TRY("sethostname", syscall(SYS_sethostname, "pwned", 5));
    TRY("setdomainname", syscall(SYS_setdomainname, "pwned", 5));
    TRY("iopl", syscall(SYS_iopl, 3));
    TRY("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
    TRY("vhangup", syscall(SYS_vhangup));
    struct user_desc d = {.entry_number = 0, .base_addr = 0, .limit = 0xfff, .seg_32bit = 1, .useable = 1};
    TRY("modify_ldt_write", syscall(SYS_modify_ldt, 1, &d, sizeof d));
    TRY("personality_read_implies_exec", syscall(SYS_personality, READ_IMPLIES_EXEC));
    TRY("move_pages_self", syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0));
    TRY("migrate_pages_self", syscall(SYS_migrate_pages, 0, 1, NULL, NULL));
    return 0;
}
