/* OUT-07/CR-05: push bytes into a terminal's input queue with TIOCSTI (also with junk in the upper
 * half of the request word, which the kernel ignores), TIOCLINUX, grab a controlling terminal, open
 * /dev/tty or a new pty. There must be no terminal, and the ioctls must be refused. */
#include "adv.h"
#include <sys/ioctl.h>
#include <termios.h>

int main(void) {
    char c = 'x';
    for (int fd = 0; fd <= 2; fd++) SAY("isatty_%d=%d\n", fd, isatty(fd));
    for (int fd = 0; fd <= 2; fd++) {
        char label[32];
        snprintf(label, sizeof label, "tiocsti_%d", fd);
        TRY(label, ioctl(fd, TIOCSTI, &c));
    }
    TRY("tiocsti_highbits", syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c));
    char sub = 12;
    TRY("tioclinux", ioctl(0, TIOCLINUX, &sub));
    TRY("tiocsctty", ioctl(0, TIOCSCTTY, 1));
    TRY("open_dev_tty", open("/dev/tty", O_RDWR));
    TRY("open_ptmx", open("/dev/ptmx", O_RDWR));
    TRY("posix_openpt", posix_openpt(O_RDWR));
    TRY("open_dev_console", open("/dev/console", O_RDWR));
    SAY("sid_is_self=%d\n", getsid(0) == getpid());
    return 0;
}
