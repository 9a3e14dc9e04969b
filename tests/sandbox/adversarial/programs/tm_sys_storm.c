/* TM-05: CPU spent in the kernel rather than in user space. argv[1]: "syscall" (getppid/sched_yield
 * storm), "fault" (mmap, touch, munmap loop: page-fault storm) or "clock" (busy-wait on clock_gettime,
 * DMOJ cpp_wall_clock). */
#include "adv.h"
#include <sched.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "syscall";
    SAY("mode=%s\n", mode);
    if (strcmp(mode, "fault") == 0) {
        for (;;) {
            size_t len = 4 << 20;
            char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            for (size_t i = 0; i < len; i += 4096) p[i] = 1;
            munmap(p, len);
        }
    }
    if (strcmp(mode, "clock") == 0) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        do clock_gettime(CLOCK_MONOTONIC, &b);
        while (b.tv_sec - a.tv_sec < 10);
        SAY("waited=10s\n");
        return 0;
    }
    for (;;) {
        syscall(SYS_getppid);
        sched_yield();
    }
}
