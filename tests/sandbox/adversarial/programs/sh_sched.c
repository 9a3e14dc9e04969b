/* Issue 27 section 3: the box's OOM score and scheduling priority. The launcher writes oom_score_adj
 * 1000; where it can pin that (CAP_SYS_RESOURCE) the box cannot lower it. RLIMIT_RTPRIO and
 * RLIMIT_NICE are 0 in the box whatever the host allows, so realtime classes and negative nice fail. */
#include "adv.h"
#include <sched.h>
#include <sys/resource.h>

static int read_adj(const char *path) {
    char buf[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) < 0) return -9999;
    close(fd);
    return atoi(buf);
}

static void write_adj(const char *label, const char *path, const char *value) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        SAY("%s=%s\n", label, ename(errno));
        return;
    }
    TRY(label, write(fd, value, strlen(value)));
    close(fd);
}

int main(void) {
    SAY("oom_score_adj_before=%d\n", read_adj("/proc/self/oom_score_adj"));
    write_adj("oom_score_adj_raise", "/proc/self/oom_score_adj", "1000");
    write_adj("oom_adj_legacy_lower", "/proc/self/oom_adj", "0");
    write_adj("oom_score_adj_lower", "/proc/self/oom_score_adj", "0");
    SAY("oom_score_adj_after=%d\n", read_adj("/proc/self/oom_score_adj"));
    struct rlimit rl;
    getrlimit(RLIMIT_RTPRIO, &rl);
    SAY("rtprio_soft=%llu\nrtprio_hard=%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    getrlimit(RLIMIT_NICE, &rl);
    SAY("nice_soft=%llu\nnice_hard=%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    struct rlimit up = {99, 99};
    TRY("raise_rtprio", setrlimit(RLIMIT_RTPRIO, &up));
    struct sched_param sp = {.sched_priority = 1};
    TRY("sched_fifo", sched_setscheduler(0, SCHED_FIFO, &sp));
    TRY("sched_rr", sched_setscheduler(0, SCHED_RR, &sp));
    TRY("setpriority_minus20", setpriority(PRIO_PROCESS, 0, -20));
    TRY("setpriority_plus5", setpriority(PRIO_PROCESS, 0, 5));  /* lowering one's own priority is fine */
    return 0;
}
