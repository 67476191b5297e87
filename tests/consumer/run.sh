#!/usr/bin/env bash
# Installs the built project into a temporary prefix, then builds tests/consumer against it twice
# (CMake's find_package(sam), and pkg-config's sam.pc) and runs both programs on the test model.
#   tests/consumer/run.sh BUILD_DIR DATA_DIR IMAGE
set -euo pipefail
build=$1 data=$2 image=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sam-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/sam/sam.h" -a -f "$work/prefix/lib/cmake/sam/samConfig.cmake" -a -f "$work/prefix/lib/pkgconfig/sam.pc"
# Nothing internal is installed: the public headers include only each other and the standard library.
if grep -h '#include "' "$work"/prefix/include/sam/*.h | grep -v '"sam/'; then
    echo "an installed header includes something outside include/sam"; exit 1
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$here" -B "$work/cmake-build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/consumer" "$data/sam_tiny.pth" "$data/config.json" "$image"

PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs sam >"$work/flags"
# shellcheck disable=SC2046
c++ -std=c++20 -O1 "$here/main.cpp" -o "$work/consumer-pc" $(cat "$work/flags")
"$work/consumer-pc" "$data/sam_tiny.pth" "$data/config.json" "$image"
echo "consumer: built and ran against the installed library (CMake package and pkg-config)"
