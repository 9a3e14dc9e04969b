/* TM-07: change the clocks: settimeofday, clock_settime, adjtimex/clock_adjtime in set mode, and a new
 * time namespace. All must fail with EPERM and the host clock must not move. */
#include "adv.h"
#include <sched.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int main(void) {
    struct timeval tv = {.tv_sec = 86400 * 365 * 10};
    TRY("settimeofday", settimeofday(&tv, NULL));
    struct timespec ts = {.tv_sec = 86400 * 365 * 10};
    TRY("clock_settime_realtime", clock_settime(CLOCK_REALTIME, &ts));
    TRY("clock_settime_monotonic", clock_settime(CLOCK_MONOTONIC, &ts));
    struct timex tx = {.modes = ADJ_OFFSET | ADJ_FREQUENCY, .offset = 500000, .freq = 1000};
    TRY("adjtimex_set", adjtimex(&tx));
    struct timex tx2 = {.modes = ADJ_SETOFFSET, .time = {.tv_sec = 3600}};
    TRY("clock_adjtime_set", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx2));
    struct timex rd = {.modes = 0};
    TRY("adjtimex_read", adjtimex(&rd));
    TRY("unshare_newtime", unshare(CLONE_NEWTIME));
    TRY("stime_via_settimeofday_tz", settimeofday(NULL, &(struct timezone){.tz_minuteswest = 600}));
    SAY("now=%ld\n", (long)time(NULL));
    return 0;
}
