/* TM-03: argv[1] threads burning CPU in parallel. */
#include "adv.h"
#include <pthread.h>

static void *burn(void *a) {
    (void)a;
    burn_forever();
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, NULL, burn, NULL);
    }
    SAY("threads=%d\n", n);
    for (;;) pause();
}
