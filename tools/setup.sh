#!/usr/bin/env bash
# The two README commands, in one script that works from any clone location:
#   bash tools/setup.sh main   install what is missing, build (Release), run the main job
#   bash tools/setup.sh test   install what is missing, build (Release), run the test suite
#                              on PoCL, Oclgrind, Mesa rusticl and Intel's CPU runtime
# Idempotent: installed packages, fetched drivers and an existing build are reused.
set -euo pipefail

mode=${1:-main}
shift || true
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build"
jobs=$(nproc 2>/dev/null || echo 2)

# libopenmpi-dev/openmpi-bin: data-parallel training (mpirun -np K clsynth train) and its CI test;
# clsynth builds and passes without them too (CMake -DCLSYNTH_MPI=OFF). libopenblas-dev and
# libdnnl-dev: the host GEMM and convolution algorithms of CPU devices (optional the same way).
packages=(ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libclblast-dev libclfft-dev libpng-dev
          libjpeg62-turbo-dev libopenblas-dev libdnnl-dev check cmake pkg-config gcc make oclgrind
          libopenmpi-dev openmpi-bin)
# test only: Mesa's rusticl (a second OpenCL implementation), pip (fetches Intel's runtime)
test_packages=(mesa-opencl-icd python3-pip)

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "clsynth setup: installing ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "clsynth setup: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure_and_build() {
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j "$jobs"
}

# Intel's OpenCL CPU runtime for the "intel" tests: wheels fetched from PyPI into a cache
# outside the clone (their licence forbids redistribution); without a network its tests are
# reported as skipped.
fetch_intel_runtime() {
    bash "$root/tools/opencl-drivers.sh" install intel ||
        echo "clsynth setup: Intel's OpenCL CPU runtime is not available: the \"intel\" tests are skipped"
}

if [ "$mode" = test ]; then
    install_missing "${packages[@]}" "${test_packages[@]}"
    fetch_intel_runtime
else
    install_missing "${packages[@]}"
fi
configure_and_build

case "$mode" in
main)
    cd "$root"
    exec "$build/clsynth" demo "$@"
    ;;
test)
    cd "$build"
    # "unit" (the default device: PoCL here), "oclgrind" (kernels under the Oclgrind
    # simulator, small shapes), "rusticl" and "intel" (the unit tests on those
    # implementations) run here; "slow" tests are for people with time: `ctest -L slow`.
    exec ctest --output-on-failure -LE slow -j "$jobs" "$@"
    ;;
*)
    echo "usage: bash tools/setup.sh main|test [extra arguments]" >&2
    exit 2
    ;;
esac
