#!/usr/bin/env bash
# Installs, builds and runs every test (what CI runs), the browser test included.
#   scripts/test.sh
#   SAM_CTEST_ARGS="-R Browser" scripts/test.sh     extra arguments to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${SAM_BUILD_DIR:-build}" --output-on-failure -j2 ${SAM_CTEST_ARGS:-}
