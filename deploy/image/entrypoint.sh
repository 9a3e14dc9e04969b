#!/bin/sh
# The image's entrypoint (under tini). `serve` first proves that this container can build a safe box
# (`stockade sandbox check` runs a real one); if it cannot, the container exits 78 naming the cause, and
# never serves with weaker boxes. Any other command is passed to `stockade` as it is (`keys create …`,
# `runtimes`, `sandbox check`).
set -eu

FLAGS="--cgroupns=private --cap-drop=all --cap-add=CHOWN,DAC_OVERRIDE,FOWNER,SETUID,SETGID,KILL,SYS_ADMIN,MKNOD --security-opt unmask=/proc/*"

refuse() {
    echo "stockade: refusing to start: $1" >&2
    echo "stockade: run the container with $FLAGS (docs/deploy.md says why each is needed)" >&2
    exit 78 # EX_CONFIG: the container's configuration, not the service, is at fault
}

# Box cgroups go under the service's own cgroup. Only in a cgroup namespace of its own is that the
# container's subtree (every path in /proc/self/cgroup is "/"); with the host's, they would land among
# the host's cgroups.
own_cgroups() {
    if grep -qv ':/$' /proc/self/cgroup; then
        refuse "the container shares the host's cgroup namespace, so it has no cgroup subtree of its own"
    fi
    # The runtime mounts that subtree read-only; with CAP_SYS_ADMIN it can be made writable, and only
    # it: in a private namespace the mount shows nothing above the container's own cgroup.
    while read -r _id _parent _dev _root point _opts rest; do
        case "$point" in /sys/fs/cgroup/* | /sys/fs/cgroup) ;; *) continue ;; esac
        case "$rest" in *"- cgroup "* | *"- cgroup2 "*) ;; *) continue ;; esac
        mount -o remount,bind,rw,nosuid,nodev,noexec "$point" 2>/dev/null || true # the check says what fails
    done </proc/self/mountinfo
}

[ $# -gt 0 ] || set -- serve
if [ "$1" = serve ] || [ "$1" = sandbox ]; then
    own_cgroups
fi
if [ "$1" = serve ] && ! stockade sandbox check; then
    refuse "this container cannot build a safe box (the FAIL lines above say why)"
fi
exec stockade "$@"
