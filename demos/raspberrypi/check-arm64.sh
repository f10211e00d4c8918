#!/usr/bin/env bash
# Prove the Raspberry Pi example on arm64: build a Debian bookworm arm64 userland (what Raspberry Pi OS
# 64-bit is), install edgesmith from a wheel built here plus aarch64 wheels from PyPI (no TensorFlow),
# run classify.py --headless under qemu-user on the sample images, and check that every top-1 equals the
# x86 result. Done three times: ai-edge-litert with numpy 2 (a plain `pip install edgesmith`), ai-edge-litert
# with numpy<2 (what setup.sh installs beside Raspberry Pi OS's apt camera stack), and tflite-runtime 2.14 with
# numpy<2 (the 32-bit Pi's dependency set; that runtime has no flatbuffer schema, so labels come from the
# zip appended to the model).
#
#   bash demos/raspberrypi/check-arm64.sh [--model FILE.tflite]
#
# Needs: the host venv (.venv, with TensorFlow to build the model), network access to the Debian mirror and
# PyPI on the first run, and root or sudo when qemu-user-static/debootstrap are missing. The userland and
# the wheels are cached in ${XDG_CACHE_HOME:-~/.cache}/edgesmith-arm64 (EDGESMITH_ARM64_CACHE overrides);
# delete that folder to start from nothing. Exits 1 on any mismatch. See /work/shared/notes/arm64-emulation.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
HOST_PY=${HOST_PY:-$REPO/.venv/bin/python}
CACHE=${EDGESMITH_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgesmith-arm64}
ROOT=$CACHE/bookworm-arm64
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgesmith-arm64.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export TF_CPP_MIN_LOG_LEVEL=3 PIP_DISABLE_PIP_VERSION_CHECK=1
MODEL=""
[[ ${1:-} == --model ]] && MODEL=$(realpath "$2")
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }

STARTED=$SECONDS
step_started=$SECONDS
step() { echo "[check-arm64] $*"; step_started=$SECONDS; }
done_step() { echo "[check-arm64]   done in $((SECONDS - step_started)) s"; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

install_tools() {
    if command -v qemu-aarch64-static >/dev/null && command -v debootstrap >/dev/null \
        && [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
        return
    fi
    step "installing qemu-user-static, debootstrap and Debian's archive keyring"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap \
        debian-archive-keyring >/dev/null
    done_step
}

debian_mirror() {
    local uri="" deb822=/etc/apt/sources.list.d/debian.sources legacy=/etc/apt/sources.list
    [[ -f $deb822 ]] && uri=$(awk '/^URIs:/ {print $2; exit}' "$deb822")
    [[ -z $uri && -f $legacy ]] && uri=$(awk '/^deb .*debian/ {print $2; exit}' "$legacy")
    echo "${uri:-http://deb.debian.org/debian}"
}

# debootstrap's first stage downloads the arm64 debs; unpacking them with dpkg-deb replaces the emulated
# second stage (11 minutes) with a few seconds. Enough for python3, which is all the example needs.
make_userland() {
    [[ -f $ROOT/.edgesmith-ready ]] && { echo "[check-arm64] userland: cached in $ROOT"; return; }
    step "building a Debian bookworm arm64 userland in $ROOT"
    local partial=$ROOT.partial
    as_root rm -rf "$partial"
    mkdir -p "$CACHE"
    as_root debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,ca-certificates \
        bookworm "$partial" "$(debian_mirror)" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    for deb in "$partial"/var/cache/apt/archives/*.deb; do as_root dpkg-deb -x "$deb" "$partial"; done
    as_root rm -f "$partial"/var/cache/apt/archives/*.deb
    # LiteRT's CPU detection would read the x86 host's /sys under qemu-user and crash; empty files make
    # it fall back (it prints harmless "Error in cpuinfo" lines).
    as_root mkdir -p "$partial/sys/devices/system/cpu"
    as_root touch "$partial/sys/devices/system/cpu/possible" "$partial/sys/devices/system/cpu/present"
    as_root chown -R "$(id -u):$(id -g)" "$partial"
    mv "$partial" "$ROOT"
    touch "$ROOT/.edgesmith-ready"
    done_step
}

# A wheel of the working tree, built from a copy so the repository gets no build/ folder.
build_wheel() {
    step "building edgesmith's wheel"
    mkdir -p "$WORK/src"
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/sdk" "$REPO/converters" "$REPO/runtime" "$WORK/src/"
    "$HOST_PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" \
        >"$WORK/wheel.log" 2>&1 || { cat "$WORK/wheel.log"; exit 1; }
    WHEEL=$(ls "$WORK"/dist/edgesmith-*.whl)
    echo "[check-arm64]   $(basename "$WHEEL")"
    done_step
}

# The wheel's requirements as pip would resolve them on a machine of the given architecture.
target_requirements() {
    "$HOST_PY" - "$WHEEL" "$1" <<'EOF'
import sys, zipfile
from packaging.requirements import Requirement
wheel, machine = sys.argv[1:]
environment = {"platform_machine": machine, "python_version": "3.11", "python_full_version": "3.11.2",
               "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": ""}
with zipfile.ZipFile(wheel) as archive:
    metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
    for line in archive.read(metadata).decode().splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1])
            if requirement.marker is None or requirement.marker.evaluate(environment):
                requirement.marker = None
                print(requirement)
EOF
}

# pip matches each manylinux_2_N tag exactly: list every glibc up to bookworm's 2.36.
pip_aarch64() {
    local platforms=(--platform manylinux2014_aarch64)
    for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
    "$HOST_PY" -m pip install --quiet --no-warn-conflicts --only-binary=:all: --python-version 3.11 \
        --implementation cp --abi cp311 "${platforms[@]}" "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

# aarch64 wheels for one variant, cached by their requirement list.
install_site() {
    local variant=$1 machine=$2 extra=$3 site=$CACHE/site-$1 requirements key
    requirements=$(target_requirements "$machine")
    [[ $extra != - ]] && requirements+=" $extra"
    key=$(echo "$requirements" | sha256sum | cut -c1-16)
    if [[ $(cat "$site/.key" 2>/dev/null) != "$key" ]]; then
        step "installing aarch64 wheels for $variant: ${requirements//$'\n'/ }"
        rm -rf "$site"
        # shellcheck disable=SC2086  # one requirement per word
        pip_aarch64 --target "$site" $requirements
        echo "$key" >"$site/.key"
        done_step
    fi
    "$HOST_PY" -m pip install --quiet --no-deps --target "$WORK/edgesmith-$variant" "$WHEEL"
    if [[ -d $site/tensorflow ]]; then echo "[check-arm64] FAIL: TensorFlow got into $site"; exit 1; fi
}

classify_args() { echo --headless --json --energy none --model "$MODEL" "$HERE/samples"; }

run_on_x86() {
    step "classifying the samples on x86 (host venv)"
    # shellcheck disable=SC2046
    "$HOST_PY" "$HERE/classify.py" $(classify_args) >"$WORK/x86.jsonl"
    done_step
}

run_on_arm64() {
    local variant=$1 versions
    versions=$(find "$CACHE/site-$variant" -maxdepth 1 -name '*.dist-info' \
        \( -name 'numpy-*' -o -name 'ai_edge_litert-*' -o -name 'tflite_runtime-*' \) -printf '%f ' | sed 's/\.dist-info//g')
    step "classifying the samples on arm64 under qemu-user ($variant: $versions)"
    # shellcheck disable=SC2046
    PYTHONPATH=$WORK/edgesmith-$variant:$CACHE/site-$variant \
        qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python3" "$HERE/classify.py" $(classify_args) \
        >"$WORK/arm64-$variant.jsonl" 2>"$WORK/arm64-$variant.err" \
        || { grep -v "cpuinfo" "$WORK/arm64-$variant.err" | tail -20; exit 1; }
    done_step
}

compare() {
    "$HOST_PY" "$HERE/compare_top1.py" "$WORK/x86.jsonl" "$WORK/arm64-$1.jsonl" --backend "$2" --machine aarch64
}

install_tools
make_userland
build_wheel
if [[ -z $MODEL ]]; then
    step "building the demo model on the host (make_model.py)"
    MODEL=$WORK/digits.tflite
    "$HOST_PY" "$HERE/make_model.py" --out "$MODEL" 2>/dev/null | tail -1
    done_step
fi
run_on_x86
failed=0
# variant, the machine whose markers pick the wheel's dependencies, an extra requirement, the backend to use
VARIANTS=(
    "litert-numpy2 aarch64 - ai_edge_litert"
    "litert-numpy1 aarch64 numpy<2 ai_edge_litert"
    "tflite-runtime armv7l - tflite_runtime"
)
for line in "${VARIANTS[@]}"; do
    read -r variant machine extra backend <<<"$line"
    install_site "$variant" "$machine" "$extra"
    run_on_arm64 "$variant"
    compare "$variant" "$backend" || failed=1
done
echo "[check-arm64] total $((SECONDS - STARTED)) s: $([[ $failed == 0 ]] && echo 'arm64 top-1 == x86 top-1 for every sample, in every variant' || echo FAILED)"
exit $failed
