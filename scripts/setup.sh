#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages sam and its tests need (as root or through sudo), the
# browser test's and the Python package tests' Python packages into .venv
# (tests/browser/requirements.txt, tests/python/requirements.txt), and builds sam
# in Release into build/ (or $SAM_BUILD_DIR).
#   scripts/setup.sh            install + build
#   SAM_SKIP_APT=1 scripts/setup.sh   build only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config git
          libdnnl-dev ocl-icd-opencl-dev libpng-dev libjpeg62-turbo-dev libexif-dev zlib1g-dev libssl-dev
          libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
          nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
          libarchive-dev                       # sam amg reads tar shards in place
          munge slurmctld slurmd slurm-client  # the Slurm test (scripts/slurm): its own daemons, started by the test
          procps                               # its pgrep
          libgtest-dev libgmock-dev libbenchmark-dev
          curl ca-certificates                 # scripts/demo.sh fetches the checkpoint
          chromium python3-venv python3-dev    # the browser test (tests/browser), the Python package
          ccache)                              # the pip build of the Python package reuses this build's objects

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${SAM_SKIP_APT:-0}" != 1 ] && [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # First: the package names below are checked against the lists (a fresh machine has none).
    $sudo apt-get update -qq
    install=()
    for p in "${missing[@]}"; do
        if apt-cache show "$p" >/dev/null 2>&1; then
            install+=("$p")
        elif [ "$p" = libjpeg62-turbo-dev ]; then
            install+=(libjpeg-turbo8-dev)   # Ubuntu's name for it
        elif [ "$p" = chromium ]; then
            echo "setup: no chromium package here (Ubuntu has a snap only); the browser test will be skipped"
        else
            install+=("$p")                 # apt-get names what it cannot find
        fi
    done
    echo "setup: installing ${install[*]}"
    # The packages' daemons (munge, slurmctld, slurmd) are not started by the install: the Slurm
    # test runs its own, with its own config. Where no policy-rc.d exists, one that denies
    # starting services is in place during the install only.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${install[@]}" >/dev/null || { [ -z "$policy" ] || $sudo rm -f "$policy"; exit 1; }
    [ -z "$policy" ] || $sudo rm -f "$policy"
fi

# The browser test's Python packages, in a venv of Debian's python3 (reinstalled when
# requirements.txt changes). Playwright drives /usr/bin/chromium: no browser is downloaded.
requirements=tests/browser/requirements.txt
if [ "${SAM_SKIP_APT:-0}" != 1 ] && ! cmp -s "$requirements" .venv/requirements.txt; then
    echo "setup: installing $requirements into .venv"
    rm -rf .venv
    /usr/bin/python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" .venv/requirements.txt
fi

# The Python package's tests (tests/python): pytest and numpy in .venv; scripts/test.sh installs
# the package itself there (pip install .).
py_requirements=tests/python/requirements.txt
if [ "${SAM_SKIP_APT:-0}" != 1 ] && ! cmp -s "$py_requirements" .venv/python-requirements.txt; then
    echo "setup: installing $py_requirements into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r "$py_requirements"
    cp "$py_requirements" .venv/python-requirements.txt
fi

# Compiled through ccache when it is there, paths relative to the repository: `pip install .`
# (scripts/test.sh) then finds the library's objects in the cache instead of compiling them again.
launcher=()
if command -v ccache >/dev/null && [[ "${SAM_CMAKE_ARGS:-}" != *COMPILER_LAUNCHER* ]]; then
    export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

build="${SAM_BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" ${SAM_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/sam"
