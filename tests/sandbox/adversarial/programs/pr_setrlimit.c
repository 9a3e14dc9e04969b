/* PR-09: raise every limit back up (soft to infinity, hard above the current hard), for this process
 * and, via prlimit, for pid 1 of the box. */
#include "adv.h"
#include <sys/resource.h>

int main(void) {
    struct {
        int res;
        const char *name;
    } rl[] = {{RLIMIT_CPU, "cpu"},       {RLIMIT_FSIZE, "fsize"},     {RLIMIT_NOFILE, "nofile"},
              {RLIMIT_NPROC, "nproc"},   {RLIMIT_STACK, "stack"},     {RLIMIT_CORE, "core"},
              {RLIMIT_MEMLOCK, "memlock"}, {RLIMIT_MSGQUEUE, "msgqueue"}};
    for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
        struct rlimit cur;
        getrlimit(rl[i].res, &cur);
        SAY("%s_soft_eq_hard=%d\n", rl[i].name, cur.rlim_cur == cur.rlim_max);
        char label[64];
        struct rlimit up = {RLIM_INFINITY, RLIM_INFINITY};
        snprintf(label, sizeof label, "raise_%s", rl[i].name);
        TRY(label, setrlimit(rl[i].res, &up));
        if (cur.rlim_max != RLIM_INFINITY) {
            struct rlimit bump = {cur.rlim_max + 1, cur.rlim_max + 1};
            snprintf(label, sizeof label, "bump_%s", rl[i].name);
            TRY(label, setrlimit(rl[i].res, &bump));
        }
        snprintf(label, sizeof label, "prlimit_init_%s", rl[i].name);
        TRY(label, prlimit(1, rl[i].res, &up, NULL));
    }
    struct rlimit lower = {1024, 1024};
    TRY("lower_fsize", setrlimit(RLIMIT_FSIZE, &lower));
    return 0;
}
