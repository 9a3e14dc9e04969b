/* DSK-05: ask for core dumps (raise RLIMIT_CORE, set dumpable) and crash with a large address space. */
#include "adv.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int main(void) {
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    TRY("raise_core", setrlimit(RLIMIT_CORE, &rl));
    struct rlimit cur;
    getrlimit(RLIMIT_CORE, &cur);
    SAY("core_limit=%ld\n", (long)cur.rlim_cur);
    TRY("set_dumpable", prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
    char *p = mmap(NULL, 32 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 'c', 32 << 20);
    abort();
}
