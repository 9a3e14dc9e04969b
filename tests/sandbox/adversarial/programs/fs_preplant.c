/* FS-01/FS-02: plant symlinks at the names the supervisor would write or chown in a later stage (the
 * next run's input files), aimed at host files. argv[1] = sentinel path. */
#include "adv.h"

int main(int argc, char **argv) {
    const char *target = argc > 1 ? argv[1] : "/usr/bin/rm";
    TRY("plant_input", symlink(target, "input.txt"));
    TRY("plant_prog", symlink("/usr/bin/rm", "fs_check_input"));
    TRY("plant_tmp", symlink("/etc/passwd", "/tmp/input.txt"));
    mkdir("sub", 0755);
    TRY("plant_dir", symlink("/etc", "subdir"));
    return 0;
}
