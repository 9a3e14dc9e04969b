#!/bin/sh
# The image's entrypoint (under tini). `serve` and `worker` first prove that this container can build a
# safe box (`stockade sandbox check` runs a real one); if it cannot, the container exits 78 naming the
# cause and the flags it lacks, and never serves with weaker boxes. Any other command is passed to
# `stockade` as it is (`keys create …`, `runtimes`, `sandbox check`).
set -eu

hint() {
    cat >&2 <<'EOF'
stockade: refusing to start: this container cannot build a safe box (the FAIL lines above say why).
stockade: it needs, and nothing more (docs/deploy.md explains each):
  podman run --cap-drop=all \
    --cap-add=SYS_ADMIN,SETUID,SETGID,CHOWN,DAC_OVERRIDE,FOWNER,KILL,SYS_RESOURCE \
    --security-opt=unmask=/proc/* --security-opt=no-new-privileges=false \
    --cgroupns=private --cgroup-conf=… (see docs/deploy.md) \
    -p 8000:8000 -v stockade-data:/var/lib/stockade IMAGE
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
