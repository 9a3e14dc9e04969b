/* SC-01/SC-02/MEM-03: SysV IPC as a channel between boxes. argv[1] = "hold": create a segment, a queue
 * and a semaphore set under fixed keys, put a token in them and wait; "probe": look for those keys and
 * for any segment at all; "leave": create them and exit at once (for the next run to find). */
#include "adv.h"
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#define KEY 0x5354434b

struct msg {
    long type;
    char text[32];
};

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "probe";
    if (strcmp(mode, "probe") == 0) {
        usleep(400 * 1000); /* let a concurrent holder create its objects first */
        TRY("shmget_key", shmget(KEY, 0, 0));
        TRY("msgget_key", msgget(KEY, 0));
        TRY("semget_key", semget(KEY, 0, 0));
        struct shm_info info;
        int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&info);
        SAY("shm_used_ids=%d\nshm_maxidx=%d\n", info.used_ids, max);
        struct msginfo mi;
        msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
        SAY("msg_queues=%d\n", mi.msgpool);
        /* Guess ids directly, too. */
        int seen = 0;
        for (int id = 0; id < 4096; id++)
            if (shmat(id, NULL, SHM_RDONLY) != (void *)-1) seen++;
        SAY("shmat_guessed=%d\n", seen);
        return 0;
    }
    int shm = shmget(KEY, 4096, IPC_CREAT | 0666);
    char *p = shmat(shm, NULL, 0);
    strcpy(p, "stockade-adv-token");
    int q = msgget(KEY, IPC_CREAT | 0666);
    struct msg m = {1, "stockade-adv-token"};
    msgsnd(q, &m, sizeof m.text, 0);
    TRY("semget_create", semget(KEY, 1, IPC_CREAT | 0666));
    SAY("shm=%d\nmsg=%d\n", shm, q);
    if (strcmp(mode, "hold") == 0)
        for (;;) pause();
    return 0;
}
