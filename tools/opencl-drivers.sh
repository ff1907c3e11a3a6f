#!/usr/bin/env bash
# The OpenCL implementations clsynth is tested on, and the environment that selects each.
#
#   tools/opencl-drivers.sh install [NAME...]   install / fetch them (default: all that apply)
#   tools/opencl-drivers.sh env NAME            print the exports that select NAME:
#                                                 eval "$(tools/opencl-drivers.sh env intel)"
#   tools/opencl-drivers.sh run NAME CMD...     run CMD with NAME selected; exit 77 (CTest's
#                                                 "skipped") with a message when NAME is missing
#   tools/opencl-drivers.sh list                one line per implementation: ready or why not
#
# NAME: pocl (Debian pocl-opencl-icd), rusticl (Mesa's rusticl on llvmpipe, Debian
# mesa-opencl-icd), intel (Intel's OpenCL CPU runtime: PyPI wheels fetched at test time,
# never committed: their licence forbids redistribution), oclgrind (the Oclgrind simulator
# as an ICD, with its API and data-race checks on), nvidia (the GPU driver's
# libnvidia-opencl.so.1, when there is one).
#
# Each environment makes OCL_ICD_VENDORS name one ICD (an .icd name from /etc/OpenCL/vendors,
# a folder holding one .icd, or the library itself), so ocl-icd's loader loads only that
# implementation, and sets CLSYNTH_DEVICE to its platform: nothing depends on the loader's
# platform order. Idempotent: what is installed or unpacked is reused.
#
# Environment: CLSYNTH_DRIVERS_DIR (where fetched drivers live; default
# ${XDG_CACHE_HOME:-~/.cache}/clsynth/opencl-drivers, outside any clone), CLSYNTH_INTEL_WHEELS
# (a folder holding the three wheels already downloaded: used instead of PyPI).
set -euo pipefail

drivers_dir=${CLSYNTH_DRIVERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clsynth/opencl-drivers}
# The versions tried (../shared/notes/opencl-drivers.md); about 270 MB of wheels.
intel_wheels=(intel-opencl-rt==2026.2.0 tbb==2023.2.0 intel-cmplr-lib-rt==2026.2.0)
vendors=/etc/OpenCL/vendors
all_names=(pocl rusticl intel oclgrind nvidia)

say() { echo "opencl-drivers: $*" >&2; }

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_install() {
    have_pkg "$1" && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { say "run as root (or install sudo) to install $1"; return 1; }
        sudo="sudo"
    fi
    say "installing $1"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends "$1"; }; then
        say "cannot install $1 (no package registry reachable?)"
        return 1
    fi
}

# ---- Intel's CPU runtime: wheels -> $drivers_dir/intel/{wheels,unpacked,intel.icd} ----

intel_dir="$drivers_dir/intel"

intel_ready() {
    [ -f "$intel_dir/intel.icd" ] && [ -f "$(cat "$intel_dir/intel.icd")" ]
}

intel_libdirs() {
    local d out=""
    for d in "$intel_dir"/unpacked/*.data/data/lib; do
        [ -d "$d" ] && out="${out:+$out:}$d"
    done
    echo "$out"
}

intel_install() {
    intel_ready && return 0
    mkdir -p "$intel_dir/wheels"
    local n_wheels
    n_wheels=$(find "$intel_dir/wheels" -name '*.whl' | wc -l)
    if [ "$n_wheels" -lt ${#intel_wheels[@]} ]; then
        if [ -n "${CLSYNTH_INTEL_WHEELS:-}" ]; then
            say "intel: taking the wheels from $CLSYNTH_INTEL_WHEELS"
            cp "$CLSYNTH_INTEL_WHEELS"/intel_opencl_rt-*.whl "$CLSYNTH_INTEL_WHEELS"/tbb-*.whl \
               "$CLSYNTH_INTEL_WHEELS"/intel_cmplr_lib_rt-*.whl "$intel_dir/wheels/" ||
                { say "intel: $CLSYNTH_INTEL_WHEELS lacks one of the three wheels; Intel's runtime is skipped"; return 3; }
        else
            local py
            py=$(command -v python3 || true)
            if [ -z "$py" ] || ! "$py" -m pip --version >/dev/null 2>&1; then
                say "intel: needs python3 with pip to fetch the wheels from PyPI; Intel's runtime is skipped"
                return 3
            fi
            say "intel: fetching ${intel_wheels[*]} from PyPI (about 270 MB, once) into $intel_dir/wheels"
            local log="$intel_dir/pip.log"
            if ! "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$intel_dir/wheels" \
                    "${intel_wheels[@]}" >"$log" 2>&1; then
                say "intel: cannot fetch the wheels from PyPI (offline?): $(tail -n 1 "$log")"
                say "intel: Intel's runtime is skipped (CLSYNTH_INTEL_WHEELS=DIR uses wheels downloaded elsewhere)"
                return 3
            fi
        fi
    fi
    rm -rf "$intel_dir/unpacked.tmp"
    mkdir -p "$intel_dir/unpacked.tmp"
    local w
    for w in "$intel_dir"/wheels/*.whl; do
        python3 -m zipfile -e "$w" "$intel_dir/unpacked.tmp" ||
            { say "intel: cannot unpack $w"; return 1; }
    done
    rm -rf "$intel_dir/unpacked"
    mv "$intel_dir/unpacked.tmp" "$intel_dir/unpacked"
    local lib
    lib=$(find "$intel_dir/unpacked" -name libintelocl.so -print -quit)
    [ -n "$lib" ] || { say "intel: the wheels hold no libintelocl.so"; return 1; }
    echo "$lib" >"$intel_dir/intel.icd.tmp"
    mv "$intel_dir/intel.icd.tmp" "$intel_dir/intel.icd"
    say "intel: ready ($lib)"
}

# ---- NVIDIA: the driver's library, found where GPU machines keep it ----

nvidia_lib() {
    local d
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib \
             /usr/lib/nvidia /usr/local/cuda/compat /usr/lib/wsl/lib; do
        [ -e "$d/libnvidia-opencl.so.1" ] && { echo "$d/libnvidia-opencl.so.1"; return 0; }
    done
    local p
    p=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 /{print $NF; exit}')
    [ -n "$p" ] && { echo "$p"; return 0; }
    return 1
}

# ---- per implementation: why it is not usable (empty when it is) ----

missing() {
    case "$1" in
    pocl) [ -f "$vendors/pocl.icd" ] || echo "not installed (Debian pocl-opencl-icd)" ;;
    rusticl) [ -f "$vendors/rusticl.icd" ] || echo "not installed (Debian mesa-opencl-icd)" ;;
    intel) intel_ready || echo "not fetched (tools/opencl-drivers.sh install intel)" ;;
    oclgrind) [ -f /usr/lib/oclgrind/liboclgrind-rt-icd.so ] || echo "not installed (Debian oclgrind)" ;;
    nvidia) nvidia_lib >/dev/null || echo "no libnvidia-opencl.so.1 on this machine (no NVIDIA driver)" ;;
    *) echo "unknown implementation '$1' (one of: ${all_names[*]})" ;;
    esac
}

print_env() {
    local why
    why=$(missing "$1")
    [ -z "$why" ] || { say "$1: $why"; return 3; }
    case "$1" in
    pocl)
        echo "export OCL_ICD_VENDORS=pocl.icd CLSYNTH_DEVICE='Portable Computing Language'" ;;
    rusticl)
        # rusticl lists no device unless a driver is enabled; llvmpipe is its CPU one.
        echo "export OCL_ICD_VENDORS=rusticl.icd RUSTICL_ENABLE=llvmpipe CLSYNTH_DEVICE=rusticl" ;;
    intel)
        # A folder holding only intel.icd: ocl-icd 2.3 loads no ICD given as an .icd path.
        echo "export OCL_ICD_VENDORS='$intel_dir' CLSYNTH_DEVICE='Intel(R) OpenCL'"
        echo "export LD_LIBRARY_PATH='$(intel_libdirs)'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" ;;
    oclgrind)
        # The simulator as an ICD, with the checks of `oclgrind --check-api --data-races`;
        # CLSYNTH_OCLGRIND=1 makes the tests use their small shapes.
        echo "export OCL_ICD_VENDORS=/usr/lib/oclgrind/liboclgrind-rt-icd.so CLSYNTH_DEVICE=Oclgrind"
        echo "export OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1 CLSYNTH_OCLGRIND=1" ;;
    nvidia)
        local icd="$drivers_dir/nvidia/nvidia.icd"
        mkdir -p "$drivers_dir/nvidia"
        nvidia_lib >"$icd"
        echo "export OCL_ICD_VENDORS='$drivers_dir/nvidia' CLSYNTH_DEVICE=NVIDIA" ;;
    esac
}

install_one() {
    case "$1" in
    pocl) apt_install pocl-opencl-icd ;;
    rusticl) apt_install mesa-opencl-icd ;;
    oclgrind) apt_install oclgrind ;;
    intel) intel_install ;;
    nvidia) nvidia_lib >/dev/null || { say "nvidia: $(missing nvidia): nothing to install"; return 3; } ;;
    *) say "$(missing "$1")"; return 2 ;;
    esac
}

known() { # exits 2 naming the choices when $1 is no implementation's name
    case " ${all_names[*]} " in *" $1 "*) return 0 ;; esac
    say "unknown implementation '$1' (one of: ${all_names[*]})"
    exit 2
}

cmd=${1:-}
shift || true
case "$cmd" in
install)
    [ $# -gt 0 ] || set -- pocl rusticl intel oclgrind
    rc=0
    for n in "$@"; do known "$n"; done
    for n in "$@"; do install_one "$n" || rc=$?; done
    exit $rc
    ;;
env)
    [ $# -eq 1 ] || usage
    known "$1"
    print_env "$1"
    ;;
run)
    [ $# -ge 2 ] || usage
    name=$1
    known "$name"
    shift
    exports=$(print_env "$name") || { say "$name: skipped"; exit 77; }
    eval "$exports"
    exec "$@"
    ;;
list)
    bin=${CLSYNTH_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/clsynth}
    for n in "${all_names[@]}"; do
        why=$(missing "$n")
        if [ -n "$why" ]; then
            printf '%-9s %s\n' "$n" "$why"
        elif [ -x "$bin" ]; then
            dev=$(eval "$(print_env "$n")"; "$bin" devices 2>&1) || true
            printf '%-9s ready: %s\n' "$n" "$(echo "$dev" | sed -n '2s/^[0-9]* *//p' | tr -s ' ')"
        else
            printf '%-9s ready\n' "$n"
        fi
    done
    ;;
*)
    usage
    ;;
esac
