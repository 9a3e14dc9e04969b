/* FS-04: outputs that are FIFOs (one held open by a writer child) and sockets; a host reader that
 * opened them would block forever. */
#include "adv.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(void) {
    TRY("mkfifo_out", mkfifo("out.fifo", 0644));
    TRY("mkfifo_tmp", mkfifo("/tmp/out.fifo", 0644));
    TRY("mkfifo_shm", mkfifo("/dev/shm/out.fifo", 0644));
    TRY("mknod_fifo", mknod("result.txt", S_IFIFO | 0644, 0));
    mkdir("nested", 0755);
    TRY("mkfifo_nested", mkfifo("nested/stdout", 0644));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, "out.sock");
    TRY("bind_sock", bind(s, (struct sockaddr *)&a, sizeof a));
    TRY("listen_sock", listen(s, 1));
    if (fork() == 0) { /* a writer that keeps the FIFO open and full */
        int fd = open("out.fifo", O_RDWR);
        char buf[4096];
        memset(buf, 'x', sizeof buf);
        for (;;) write(fd, buf, sizeof buf);
    }
    usleep(100 * 1000);
    SAY("done=1\n");
    return 0;
}
