/* stockade-launch: the first step of every box, run by the supervisor as root.
 *
 * Usage: launch [-p CGROUP_PROCS_FILE]... [-r RESOURCE:VALUE]... -u UID -g GID -- COMMAND [ARGS...]
 *
 * Joins the box cgroups (so everything the box starts is accounted and killable), makes itself the OOM
 * killer's first choice (pinned there when it holds CAP_SYS_RESOURCE: the write then also sets the
 * kernel's oom_score_adj_min, below which an unprivileged process cannot go), sets each rlimit with
 * hard = soft (so it cannot be raised back) and RLIMIT_RTPRIO and RLIMIT_NICE to 0 whatever the host
 * handed the service (no SCHED_FIFO/RR, no nice below 0), drops every group and switches to the slot's
 * uid/gid, then execs COMMAND (bubblewrap). Doing this in a small C program instead of a Python
 * preexec_fn lets the supervisor spawn with vfork instead of fork()ing the whole interpreter, and keeps
 * Python code out of a forked child of a threaded process.
 *
 * Any failure before the exec prints "stockade-launch: ..." and exits 125: the box was never built.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int fail(const char *what, const char *arg) {
    fprintf(stderr, "stockade-launch: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
    return 125;
}

static int write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, value, strlen(value));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

int main(int argc, char **argv) {
    long uid = -1, gid = -1;
    int i = 1;
    /* First pass: validate the arguments; nothing is changed until all of them parse. */
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc) {
            errno = EINVAL;
            return fail("missing value for", argv[i]);
        }
        if (strcmp(argv[i], "-u") == 0) uid = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-g") == 0) gid = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "-p") != 0 && strcmp(argv[i], "-r") != 0) {
            errno = EINVAL;
            return fail("unknown option", argv[i]);
        }
    }
    if (i >= argc - 1 || uid <= 0 || gid <= 0) {
        errno = EINVAL;
        return fail("usage: launch [-p FILE]... [-r RES:VAL]... -u UID -g GID -- COMMAND", NULL);
    }
    char **command = argv + i + 1;

    for (int j = 1; j < i; j += 2) {
        if (strcmp(argv[j], "-p") == 0 && write_file(argv[j + 1], "0") != 0) return fail("join cgroup", argv[j + 1]);
    }
    if (write_file("/proc/self/oom_score_adj", "1000") != 0) return fail("oom_score_adj", NULL);
    for (int j = 1; j < i; j += 2) {
        if (strcmp(argv[j], "-r") != 0) continue;
        char *colon = strchr(argv[j + 1], ':');
        if (colon == NULL) {
            errno = EINVAL;
            return fail("rlimit", argv[j + 1]);
        }
        int resource = atoi(argv[j + 1]);
        rlim_t value = (rlim_t)strtoull(colon + 1, NULL, 10);
        struct rlimit rl = {value, value};
        if (setrlimit(resource, &rl) != 0) return fail("setrlimit", argv[j + 1]);
    }
    static const struct rlimit zero = {0, 0};
    if (setrlimit(RLIMIT_RTPRIO, &zero) != 0) return fail("setrlimit", "RLIMIT_RTPRIO");
    if (setrlimit(RLIMIT_NICE, &zero) != 0) return fail("setrlimit", "RLIMIT_NICE");
    if (setgroups(0, NULL) != 0) return fail("setgroups", NULL);
    if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) return fail("setresgid", NULL);
    if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) return fail("setresuid", NULL);
    if (getuid() == 0 || geteuid() == 0) {
        errno = EPERM;
        return fail("still root after setresuid", NULL);
    }
    execvp(command[0], command);
    return fail("exec", command[0]);
}
