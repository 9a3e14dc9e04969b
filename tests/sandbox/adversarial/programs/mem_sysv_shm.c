/* MEM-03: a SysV shared-memory segment bigger than the memory limit, attached and touched. */
#include "adv.h"
#include <sys/ipc.h>
#include <sys/shm.h>

int main(void) {
    size_t len = 128 << 20;
    int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
    SAY("shmget=%s\n", id < 0 ? ename(errno) : "OK");
    char *p = shmat(id, NULL, 0);
    SAY("shmat=%s\n", p == (void *)-1 ? ename(errno) : "OK");
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    SAY("touched=all\n");
    return 0;
}
