#!/bin/sh
# The image's entrypoint (under tini). `serve` first proves that this container can build a safe box
# (`stockade sandbox check` runs a real one); if it cannot, the container exits 78 naming the cause, and
# never serves with weaker boxes. Any other command is passed to `stockade` as it is (`keys create …`,
# `runtimes`, `sandbox check`).
set -eu

hint() {
    cat >&2 <<'EOF'
stockade: refusing to start: this container cannot build a safe box (the FAIL lines above say why).
stockade: the container needs user namespaces, mounts in them, and a delegated cgroup subtree;
stockade: docs/deploy.md says what is known of the flags that give them.
EOF
}

[ $# -gt 0 ] || set -- serve
if [ "$1" = serve ] && ! stockade sandbox check; then
    hint
    exit 78 # EX_CONFIG: the container's configuration, not the service, is at fault
fi
exec stockade "$@"
