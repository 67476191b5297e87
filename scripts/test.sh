#!/usr/bin/env bash
# Installs, builds and runs every test (what CI runs), the browser test included, then installs
# the Python package into .venv (pip install .) and runs its tests (tests/python, pytest).
#   scripts/test.sh
#   SAM_CTEST_ARGS="-R Browser" scripts/test.sh     extra arguments to ctest
#   SAM_PYTEST_ARGS="-k predict" scripts/test.sh    extra arguments to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${SAM_BUILD_DIR:-build}" --output-on-failure -j2 ${SAM_CTEST_ARGS:-}

# The Python package (docs/PYTHON.md). Its build directory sits beside build/ so that ccache,
# with paths relative to the repository, serves the library's objects compiled above.
pip_args=(--config-settings=build-dir=build-python)
if command -v ccache >/dev/null; then
    export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
    pip_args+=(--config-settings=cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache
              --config-settings=cmake.define.CMAKE_C_COMPILER_LAUNCHER=ccache)
fi
TIMEFORMAT="test: pip install . took %0R s"
# The compiler of the CMake build (scikit-build-core would otherwise take Python's, another name
# for the same compiler that ccache counts as another compiler).
export CC="${CC:-cc}" CXX="${CXX:-c++}"
time .venv/bin/pip install -q --disable-pip-version-check "${pip_args[@]}" .
.venv/bin/python -c "import sam_cpp; print('test: sam_cpp', sam_cpp.__version__, 'imports')"
.venv/bin/python -m pytest -q tests/python ${SAM_PYTEST_ARGS:-}
