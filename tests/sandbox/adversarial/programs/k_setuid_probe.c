/* FS-10: run every setuid/setgid binary the image has, with a preloaded library that reports the ids
 * the binary actually got. With no_new_privs and nosuid, LD_PRELOAD stays honoured (no secure mode) and
 * every binary must report euid 1000. */
#include "adv.h"
#include <dirent.h>

int main(int argc, char **argv, char **envp) {
    const char *dirs[] = {"/usr/bin", "/usr/sbin", "/usr/lib/openssh", "/usr/lib/dbus-1.0", "/usr/libexec"};
    int found = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            struct stat st;
            if (lstat(path, &st) || !S_ISREG(st.st_mode) || !(st.st_mode & (S_ISUID | S_ISGID))) continue;
            found++;
            pid_t p = fork();
            if (p == 0) {
                char *env[] = {"LD_PRELOAD=/box/k_preload.so", "PATH=/usr/bin:/bin", NULL};
                char *args[] = {path, "--help", NULL};
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                execve(path, args, env);
                _exit(127);
            }
            int status;
            waitpid(p, &status, 0);
            SAY("RAN %s %d\n", path, WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
        }
        closedir(dir);
    }
    SAY("setuid_binaries=%d\n", found);
    return 0;
}
