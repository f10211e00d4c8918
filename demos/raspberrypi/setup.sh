#!/usr/bin/env bash
# Install the Raspberry Pi example on Raspberry Pi OS bookworm: edgesmith's runtime and nothing else.
#
#   bash setup.sh                      # install from this checkout into ~/edgesmith-venv
#   bash setup.sh --wheel edgesmith-0.1.0-py3-none-any.whl
#   bash setup.sh --camera             # also apt-install picamera2 and OpenCV (Pi camera, USB camera, window)
#   bash setup.sh --venv DIR --no-apt  # another folder; skip apt (packages already there)
#
# 64-bit (arm64): edgesmith's base package with ai-edge-litert. 32-bit (armhf): tflite-runtime with numpy<2.
# Never TensorFlow. The venv sees the system's packages (Raspberry Pi OS ships picamera2 through apt), so
# numpy stays below 2 to match the numpy that apt's picamera2, simplejpeg and OpenCV were built against.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=$HOME/edgesmith-venv
WHEEL=""
CAMERA=0
APT=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --venv) VENV=$2; shift 2 ;;
        --wheel) WHEEL=$(realpath "$2"); shift 2 ;;
        --camera) CAMERA=1; shift ;;
        --no-apt) APT=0; shift ;;
        -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "[setup] $*"; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# The userland decides, not the kernel: 32-bit Raspberry Pi OS runs a 64-bit kernel on a Pi 4/5, so
# `uname -m` says aarch64 there while Python and its wheels are armhf.
userland_arch() {
    if command -v dpkg >/dev/null; then dpkg --print-architecture; else uname -m; fi
}

check_system() {
    local codename
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")
    [[ $codename == bookworm ]] || say "warning: made for Raspberry Pi OS bookworm, this is '$codename'; carrying on"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
        || { echo "[setup] error: Python 3.9 or newer is needed" >&2; exit 2; }
}

install_apt_packages() {
    local packages=(python3-venv python3-pip)
    [[ $CAMERA == 1 ]] && packages+=(python3-picamera2 python3-opencv)
    say "apt: ${packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
}

# pip's platform_machine marker comes from the kernel too, so on armhf the runtime is named explicitly.
install_edgesmith() {
    local arch=$1 source=${WHEEL:-$REPO}
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    case $arch in
        armhf | armv7l)
            say "32-bit: edgesmith with tflite-runtime and numpy<2"
            "$VENV/bin/pip" install --quiet --no-deps "$source"
            "$VENV/bin/pip" install --quiet "numpy>=1.23,<2" "pillow>=9" "click>=8.1" "flatbuffers>=23.5" \
                "tflite-runtime>=2.14"
            ;;
        *)
            say "64-bit ($arch): edgesmith with ai-edge-litert"
            "$VENV/bin/pip" install --quiet "$source" "numpy<2"
            ;;
    esac
}

verify() {
    "$VENV/bin/python" - <<'EOF'
import importlib.util, sys
from edgesmith.runtime.model import interpreter_class
_, backend = interpreter_class()
assert importlib.util.find_spec("tensorflow") is None, "TensorFlow is installed in this venv; it is not needed"
cameras = [name for name in ("picamera2", "cv2") if importlib.util.find_spec(name)]
print(f"[setup] ok: edgesmith runtime on {backend}, Python {sys.version.split()[0]}, "
      f"camera support: {', '.join(cameras) or 'none (files only; rerun with --camera)'}")
EOF
}

check_system
[[ $APT == 1 ]] && install_apt_packages
arch=$(userland_arch)
say "venv: $VENV (with the system's packages, for picamera2)"
python3 -m venv --system-site-packages "$VENV"
install_edgesmith "$arch"
verify
if [[ -f $HERE/models/digits.tflite ]]; then
    "$VENV/bin/python" "$HERE/classify.py" "$HERE/samples" --headless --benchmark 5
else
    say "no model yet: run 'python demos/raspberrypi/make_model.py' on a computer with TensorFlow and copy"
    say "demos/raspberrypi/models/ here (see README.md), or pass --model to classify.py"
fi
say "done. Try: $VENV/bin/python $HERE/classify.py $HERE/samples"
