/* FS-03 against the verdict: after a failing exit the supervisor looks for a file at the size limit in
 * the box. Leave only symlinks to big host files and host directories (and a deep chain), then fail:
 * nothing may be followed, so the verdict stays a plain runtime error. */
#include "adv.h"

int main(void) {
    TRY("link_big_file", symlink("/usr/bin/bash", "big"));
    TRY("link_big_lib", symlink("/usr/lib/x86_64-linux-gnu/libc.so.6", "/tmp/libc"));
    TRY("link_root", symlink("/", "root"));
    TRY("link_usr", symlink("/usr", "/dev/shm/usr"));
    char name[201];
    memset(name, 'e', 200);
    name[200] = 0;
    for (int i = 0; i < 40 && mkdir(name, 0700) == 0 && chdir(name) == 0; i++) symlink("/usr/bin", "bin");
    return 3;
}
