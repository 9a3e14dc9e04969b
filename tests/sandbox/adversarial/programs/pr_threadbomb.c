/* PR-02: create sleeping threads until the kernel refuses; report how many and why. */
#include "adv.h"
#include <pthread.h>

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

int main(void) {
    int n = 0, err = 0;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    for (;;) {
        pthread_t t;
        err = pthread_create(&t, &a, sleeper, NULL);
        if (err) break;
        n++;
    }
    SAY("threads=%d\ncreate=%s\n", n, ename(err));
    return 0;
}
