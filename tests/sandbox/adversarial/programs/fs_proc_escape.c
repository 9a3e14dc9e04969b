/* CR-02/FS-06: climb out through procfs magic links and inherited cwd tricks: /proc/1/root/.., the
 * init's cwd, /proc/self/fd of a directory, "..'' chains from /; every route must end at the box root. */
#include "adv.h"
#include <dirent.h>

static void where(const char *label, const char *path) {
    struct stat st, root;
    stat("/", &root);
    if (stat(path, &st) != 0) {
        SAY("%s=%s\n", label, ename(errno));
        return;
    }
    SAY("%s=%s\n", label, st.st_dev == root.st_dev && st.st_ino == root.st_ino ? "box_root" : "elsewhere");
}

int main(void) {
    where("dotdot_chain", "/../../../../..");
    where("proc1_root_up", "/proc/1/root/../../..");
    where("proc_self_root", "/proc/self/root");
    where("proc1_cwd_up", "/proc/1/cwd/../../../..");
    int dfd = open("/usr", O_RDONLY | O_DIRECTORY);
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d/../../..", dfd);
    where("proc_fd_up", p);
    TRY("fchdir_usr", fchdir(dfd));
    where("cwd_up_after_fchdir", "../../../../..");
    TRY("chdir_proc1_root", chdir("/proc/1/root"));
    DIR *d = opendir(".");
    int has_box = 0, has_work = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, "box")) has_box = 1;
        if (!strcmp(e->d_name, "work") || !strcmp(e->d_name, "root")) has_work = 1;
    }
    SAY("proc1_root_has_box=%d\nproc1_root_has_host_dirs=%d\n", has_box, has_work);
    return 0;
}
