#!/usr/bin/env bash
# Installs, builds and runs every test (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${SAM_BUILD_DIR:-build}" --output-on-failure -j2
