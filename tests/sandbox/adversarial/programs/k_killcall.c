/* K-13: calls no box program needs (kernel images, modules, reboot) must kill the whole process.
 * argv[1] picks the call. The line before it proves the program ran up to that point. */
#include "adv.h"
#include <linux/reboot.h>

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    SAY("calling=%s\n", c);
    long r = -2;
    if (!strcmp(c, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, NULL, 0);
    if (!strcmp(c, "kexec_file_load")) r = syscall(SYS_kexec_file_load, -1, -1, 0, "", 0);
    if (!strcmp(c, "init_module")) r = syscall(SYS_init_module, "", 0, "");
    if (!strcmp(c, "finit_module")) r = syscall(SYS_finit_module, 0, "", 0);
    if (!strcmp(c, "delete_module")) r = syscall(SYS_delete_module, "ext4", 0);
    if (!strcmp(c, "reboot")) r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, NULL);
    SAY("survived=%ld:%s\n", r, ename(errno));
    return 0;
}
