#!/bin/sh
# The image's entrypoint (under tini). `serve` and `worker` first prove that this container can build a
# safe box (`stockade sandbox check` runs a real one); if it cannot, the container exits 78 naming the
# cause and the flags it lacks, and never serves with weaker boxes. Any other command is passed to
# `stockade` as it is (`keys create …`, `runtimes`, `sandbox check`).
set -eu

hint() {
    cat >&2 <<'EOF'
stockade: refusing to start: this container cannot build a safe box (the FAIL lines above say why).
stockade: the container needs user namespaces, mounts in them, and a delegated cgroup subtree;
stockade: docs/deploy.md says what is known of the flags that give them.
EOF
}

case "${1:-serve}" in
serve | worker)
    if ! stockade sandbox check; then
        hint
        exit 78 # EX_CONFIG: the container's configuration, not the service, is at fault
    fi
    exec stockade "$@"
    ;;
*)
    exec stockade "$@"
    ;;
esac
