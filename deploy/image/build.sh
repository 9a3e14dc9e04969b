#!/bin/bash
# Build the Stockade OCI image without a daemon and without a base image from a registry:
#   deploy/image/build.sh [stockade|stockade-full]
#   deploy/image/build.sh --tag FLAVOUR   prints the inputs tag only (below), builds nothing
# 1. the committed tree (git archive HEAD: never someone's uncommitted edit) -> a wheel of stockade;
# 2. mmdebstrap makes a Debian 12 root file system of the flavour's packages (deploy/image/packages.py),
#    with stockade and its pinned Python packages (requirements.txt) in a venv at /opt/stockade;
# 3. buildah builds Containerfile (FROM scratch + that tarball) into localhost/FLAVOUR:VERSION.
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (the commit's time), pip's pins are exact, and
# STOCKADE_DEBIAN_MIRROR may name a dated snapshot of the archive to pin Debian's packages too.
set -euo pipefail

tag_only=
if [ "${1:-}" = --tag ]; then tag_only=1 && shift; fi
flavour=${1:-stockade}
case "$flavour" in stockade | stockade-full) ;; *) echo "build.sh: unknown flavour $flavour" >&2; exit 2 ;; esac
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$repo"
python=${PYTHON:-$repo/.venv/bin/python}
mirror=${STOCKADE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${STOCKADE_DEBIAN_SUITE:-bookworm}
revision=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
version=$(git show HEAD:pyproject.toml | "$python" -c 'import sys, tomllib; print(tomllib.loads(sys.stdin.read())["project"]["version"])')
work=$repo/build/image/$flavour
tag=localhost/$flavour:$version
# Also tagged by its inputs, the tree hashes at HEAD of all the build reads from the repo: a build of
# the same inputs can be reused (tests/packaging/test_image.py does).
inputs=$(git rev-parse HEAD:src HEAD:deploy/image HEAD:pyproject.toml HEAD:README.md HEAD:LICENSE | sha256sum)
inputs_tag=localhost/$flavour:src-${inputs:0:16}
if [ -n "$tag_only" ]; then echo "$inputs_tag" && exit 0; fi

for tool in mmdebstrap buildah; do
    command -v $tool >/dev/null || { echo "build.sh: $tool missing: apt-get install mmdebstrap buildah" >&2; exit 1; }
done
rm -rf "$work" && mkdir -p "$work/src" "$work/dist"
git archive HEAD | tar -x -C "$work/src"
"$python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
cp "$work/src/deploy/image/requirements.txt" "$work/dist/"
# The pinned wheels are fetched here, with the host's pip settings (its index, proxy and CA), and the
# root installs them offline: the chroot needs neither PyPI nor this host's certificates.
"$python" -m pip download -q --no-deps --only-binary=:all: -d "$work/dist/wheels" -r "$work/dist/requirements.txt"
install -m 0755 "$work/src/deploy/image/entrypoint.sh" "$work/dist/stockade-entrypoint"
packages=$(PYTHONPATH=$work/src/src "$python" "$work/src/deploy/image/packages.py" "$flavour" | paste -sd,)

# Hooks run on the host with the new root as $1; chroot runs in it, with the archive still reachable.
in_root="chroot \"\$1\" env -i PATH=/opt/stockade/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
in_root="$in_root SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1"
hooks=(
    --customize-hook='mkdir -p "$1/tmp/stockade-build"'
    --customize-hook="copy-in $work/dist/. /tmp/stockade-build"
    --customize-hook="$in_root python3 -m venv /opt/stockade"
    --customize-hook="$in_root pip install -q --no-deps --no-index -f /tmp/stockade-build/wheels -r /tmp/stockade-build/requirements.txt"
    --customize-hook="$in_root sh -c 'pip install -q --no-deps /tmp/stockade-build/*.whl'"
    --customize-hook="$in_root pip check"  # the pins are installed without deps: all of them must be there
    --customize-hook='install -m 0755 "$1/tmp/stockade-build/stockade-entrypoint" "$1/usr/local/bin/"'
    --customize-hook='ln -sf /opt/stockade/bin/stockade "$1/usr/local/bin/stockade"'
)
if [ "$flavour" = stockade-full ]; then
    # The toolchains that are no Debian package (zig's wheel); the packages are in already.
    hooks+=(--customize-hook="$in_root stockade toolchains install --all")
fi
hooks+=(
    --customize-hook='rm -rf "$1/tmp/stockade-build" "$1/root/.cache"'
    --customize-hook='mkdir -p "$1/var/lib/stockade" "$1/var/log/stockade"'
)
mmdebstrap --mode=root --variant=apt --format=tar --include="$packages" \
    --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='APT::Install-Recommends "false"' \
    "${hooks[@]}" "$suite" "$work/rootfs.tar" "$mirror"

buildah build --quiet --layers=false --timestamp "$SOURCE_DATE_EPOCH" \
    --build-arg FLAVOUR="$flavour" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    -f "$work/src/deploy/image/Containerfile" -t "$tag" -t "localhost/$flavour:latest" -t "$inputs_tag" "$work"
echo "built $tag ($(buildah inspect --type image --format '{{.FromImageID}}' "$tag"))"
