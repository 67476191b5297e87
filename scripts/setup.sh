#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages sam needs (as root or through sudo) and builds it in
# Release with native CPU flags into build/ (or $SAM_BUILD_DIR).
#   scripts/setup.sh            install + build
#   SAM_SKIP_APT=1 scripts/setup.sh   build only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config git
          libdnnl-dev ocl-icd-opencl-dev libpng-dev libjpeg62-turbo-dev libexif-dev
          nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
          libgtest-dev libgmock-dev libbenchmark-dev)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${SAM_SKIP_APT:-0}" != 1 ] && [ ${#missing[@]} -gt 0 ]; then
    # Ubuntu names libjpeg-turbo's dev package libjpeg-turbo8-dev.
    if ! apt-cache show libjpeg62-turbo-dev >/dev/null 2>&1; then
        missing=("${missing[@]/libjpeg62-turbo-dev/libjpeg-turbo8-dev}")
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build="${SAM_BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${SAM_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/sam"
