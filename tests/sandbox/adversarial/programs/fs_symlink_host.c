/* FS-03/FS-04: leave output "files" that are symlinks to host secrets, devices and directories, so a
 * host copy-out that follows links would read host bytes, hang on a device or walk the host tree.
 * argv[1] = root-only canary path, argv[2] = read-only sentinel path. */
#include "adv.h"

int main(int argc, char **argv) {
    const char *links[][2] = {
        {"/etc/passwd", "out.txt"},
        {"/etc/shadow", "shadow"},
        {"/etc/stockade-canary", "canary_etc"},
        {argc > 1 ? argv[1] : "/root", "canary_root"},
        {argc > 2 ? argv[2] : "/usr", "sentinel"},
        {"/proc/self/environ", "environ"},          /* the host reader's own environment */
        {"/proc/1/environ", "init_environ"},
        {"/proc/self/cwd", "cwd"},
        {"../../../../../../../../../etc/passwd", "relative"},
        {"/dev/zero", "zero"},                     /* endless */
        {"/dev/urandom", "urandom"},               /* endless */
        {"/", "rootdir"},                          /* directory: a walker must not descend */
        {"/root", "roothome"},
        {"/etc", "etcdir"},
        {"loop2", "loop1"},
        {"loop1", "loop2"},
        {"dangling-nowhere", "dangling"},
    };
    int made = 0;
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "symlink_%s", links[i][1]);
        if (TRY(label, symlink(links[i][0], links[i][1])) == 0) made++;
    }
    /* The same inside a subdirectory, and a file whose parent is a symlink to a host dir. */
    mkdir("sub", 0755);
    TRY("symlink_sub_passwd", symlink("/etc/passwd", "sub/passwd"));
    TRY("symlink_sub_parent", symlink("/etc", "sub/up"));
    SAY("made=%d\n", made);
    return 0;
}
