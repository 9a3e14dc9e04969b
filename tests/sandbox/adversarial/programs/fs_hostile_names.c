/* FS-07/OUT-02: file names built to break host shell scripts, globs, loggers and UTF-8 decoders. Each
 * file's content is its own name. None of the `touch` payloads (run from a shell, they would create a
 * marker file in $HOME, i.e. /root on the host) may ever run. */
#include "adv.h"

static const char *names[] = {
    "-rf",
    "--no-preserve-root",
    "a\nb",
    "$(cd;touch stockade-adv-pwn-dollar)",
    "`cd;touch stockade-adv-pwn-backtick`",
    "; cd; touch stockade-adv-pwn-semicolon",
    "| cd; touch stockade-adv-pwn-pipe",
    "*",
    "?",
    "[a-z]",
    " leading space",
    "trailing space ",
    "back\\slash",
    "\xff\xfe invalid utf8",
    "\xc0\xaf overlong",
    "\xed\xa0\x80 surrogate",
    "\x1b[31m ansi \x1b]0;title\x07",
    "cr\rname",
    "tab\tname",
    "...",
    ".hidden",
    "~",
    "con:colon",
    "\xe2\x80\xae rtl-override",
};

int main(void) {
    int ok = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int fd = open(names[i], O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            SAY("create_%zu=%s\n", i, ename(errno));
            continue;
        }
        write_all(fd, names[i], strlen(names[i]));
        close(fd);
        ok++;
    }
    char longname[256];
    memset(longname, 'L', 255);
    longname[255] = 0;
    int fd = TRY("create_255", open(longname, O_WRONLY | O_CREAT, 0644));
    if (fd >= 0) close(fd);
    char toolong[300];
    memset(toolong, 'T', 299);
    toolong[299] = 0;
    TRY("create_299", open(toolong, O_WRONLY | O_CREAT, 0644));
    TRY("create_empty", open("", O_WRONLY | O_CREAT, 0644));
    TRY("mkdir_dash_dir", mkdir("-dir\n", 0755));
    fd = TRY("create_nested", open("-dir\n/$(cd;touch stockade-adv-pwn-nested)", O_WRONLY | O_CREAT, 0644));
    if (fd >= 0) close(fd);
    SAY("created=%d\n", ok);
    return 0;
}
