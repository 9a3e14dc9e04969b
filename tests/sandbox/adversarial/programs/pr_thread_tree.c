/* PR-02: threads that spawn threads that spawn threads, then all wait forever. Retries at the pids
   limit sleep 50 ms so the tree stays idle and the wall clock, not the CPU limit, ends it. */
#include "adv.h"
#include <pthread.h>

static void *node(void *arg) {
    (void)arg;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        while (pthread_create(&t, &a, node, NULL) != 0) usleep(50000);
    }
    for (;;) pause();
    return NULL;
}

int main(void) {
    SAY("tree=start\n");
    node(NULL);
}
