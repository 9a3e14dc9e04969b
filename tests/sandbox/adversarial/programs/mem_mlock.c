/* MEM-08: lock memory and ask for huge pages beyond the small RLIMIT_MEMLOCK allowance. */
#include "adv.h"
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

int main(void) {
    static char small[4096] __attribute__((aligned(4096)));
    TRY("mlock_4k", mlock(small, sizeof small));
    size_t big = 8 << 20;
    char *p = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TRY("mlock_8m", mlock(p, big));
    TRY("mlockall", mlockall(MCL_CURRENT | MCL_FUTURE));
    void *l = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    SAY("mmap_locked=%s\n", l == MAP_FAILED ? ename(errno) : "OK");
    void *h = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    SAY("mmap_hugetlb=%s\n", h == MAP_FAILED ? ename(errno) : "OK");
    int id = shmget(IPC_PRIVATE, 2 << 20, IPC_CREAT | SHM_HUGETLB | 0600);
    SAY("shmget_hugetlb=%s\n", id < 0 ? ename(errno) : "OK");
    int id2 = shmget(IPC_PRIVATE, big, IPC_CREAT | 0600);
    TRY("shm_lock", shmctl(id2, SHM_LOCK, NULL));
    shmctl(id2, IPC_RMID, NULL);
    TRY("madvise_hugepage", madvise(p, big, MADV_HUGEPAGE));
    return 0;
}
