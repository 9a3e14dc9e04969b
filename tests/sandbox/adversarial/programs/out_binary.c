/* OUT-02/OUT-03: every byte value, NULs, invalid UTF-8 (lone continuation, overlong, surrogate, 0xFF),
 * ANSI/OSC escapes (title, clipboard, hyperlink), CR tricks and HTML, on both stdout and stderr. */
#include "adv.h"

int main(void) {
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    const char tricky[] = "\x00\x00\x80\xbf\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xed\xbf\xbf\xf4\x90\x80\x80\xff\xfe"
                          "\x1b]0;pwned title\x07\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b]8;;http://x\x1b\\link"
                          "\x1b]8;;\x1b\\\x1b[2J\x1b[31mred\rOVERWRITE<script>alert(1)</script>";
    for (int fd = 1; fd <= 2; fd++) {
        write_all(fd, all, sizeof all);
        write_all(fd, tricky, sizeof tricky - 1);
        write_all(fd, all, sizeof all);
    }
    return 0;
}
