/* PR-08: copy the own binary into a memfd and fexecve it (no file on any mount), then exec again
 * through /proc/self/fd and through the dynamic loader. The final program burns CPU: limits must hold. */
#include "adv.h"
#include <sys/mman.h>
#include <sys/sendfile.h>

int main(int argc, char **argv, char **envp) {
    if (argc > 1 && strcmp(argv[1], "burn") == 0) {
        SAY("stage=burn\n");
        burn_forever();
    }
    int src = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    fstat(src, &st);
    int mfd = memfd_create("innocent", MFD_CLOEXEC);
    sendfile(mfd, src, NULL, (size_t)st.st_size);
    if (argc > 1 && strcmp(argv[1], "procfd") == 0) {
        int plain = memfd_create("innocent2", 0);
        lseek(src, 0, SEEK_SET);
        sendfile(plain, src, NULL, (size_t)st.st_size);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", plain);
        char *args[] = {"x", "burn", NULL};
        SAY("stage=procfd\n");
        execve(path, args, envp);
        SAY("execve_procfd=%s\n", ename(errno));
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "ldso") == 0) {
        /* A non-executable data file run by the dynamic loader. */
        int data = open("/tmp/data.bin", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        lseek(src, 0, SEEK_SET);
        sendfile(data, src, NULL, (size_t)st.st_size);
        close(data);
        char *args[] = {"/lib64/ld-linux-x86-64.so.2", "/tmp/data.bin", "burn", NULL};
        SAY("stage=ldso\n");
        execve(args[0], args, envp);
        SAY("execve_ldso=%s\n", ename(errno));
        return 1;
    }
    char *args[] = {"innocent", "burn", NULL};
    SAY("stage=memfd\n");
    fexecve(mfd, args, envp);
    SAY("fexecve=%s\n", ename(errno));
    return 1;
}
