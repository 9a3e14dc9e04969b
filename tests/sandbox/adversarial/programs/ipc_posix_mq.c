/* MEM-03/SC-01: POSIX message queues (persistent kernel objects) and abstract sockets as channels. */
#include "adv.h"
#include <mqueue.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(void) {
    struct mq_attr attr = {.mq_maxmsg = 10, .mq_msgsize = 1024};
    TRY("mq_open_create", mq_open("/stockade-adv-mq", O_CREAT | O_RDWR, 0666, &attr));
    TRY("mq_open_existing", mq_open("/stockade-adv-mq", O_RDWR));
    TRY("open_dev_mqueue", open("/dev/mqueue", O_RDONLY));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path + 1, "stockade-adv-abstract");
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen("stockade-adv-abstract"));
    TRY("bind_abstract", bind(s, (struct sockaddr *)&a, len));
    return 0;
}
