#!/usr/bin/env bash
# One short, unattended check of clsynth on a lent GPU machine (NVIDIA's OpenCL), with
# every result written into OUTDIR:
#   clsynth devices, the unit suite (every non-slow test binary), clsynth tune with a short
#   budget, clsynth bench --json, and PyTorch timings of the same ops when torch is there.
# At most --budget seconds (default 480) in all: each step gets what is left.
#
#   tools/device_check.sh --bundle              on the build machine: copy the built binaries
#                                               and the shared libraries they need (ldd) into
#                                               .devlibs/ (git-ignored) for a machine that
#                                               has no package registry
#   tools/device_check.sh [--impl NAME] [--budget S] OUTDIR
#                                               on the GPU machine (NAME default nvidia; any
#                                               name of tools/opencl-drivers.sh, e.g. pocl to
#                                               try the script on a CPU machine)
#
# The GPU machine needs only the NVIDIA driver (libnvidia-opencl.so.1): the ICD loader,
# CLBlast, clFFT, libpng, libjpeg and Check's libsubunit come from .devlibs/lib when the
# system lacks them, and tools/opencl-drivers.sh writes the .icd file naming the driver.
# Exit status 0 when every step ran and passed; the summary says which did not.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
devlibs="$root/.devlibs"

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- --bundle: binaries and their libraries into .devlibs ----
bundle() {
    local build="$root/build"
    [ -x "$build/clsynth" ] || { echo "device_check: no $build/clsynth: build first (tools/setup.sh)" >&2; exit 1; }
    rm -rf "$devlibs.tmp"
    mkdir -p "$devlibs.tmp/bin/tests" "$devlibs.tmp/lib"
    cp "$build/clsynth" "$devlibs.tmp/bin/"
    local t
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] && [ -f "$t" ] && cp "$t" "$devlibs.tmp/bin/tests/"
    done
    # Every library the binaries need except the C/C++ runtime the GPU machine has anyway
    # (glibc, libstdc++, libgcc_s); the binaries need GLIBC 2.34 and GLIBCXX 3.4.29 at most.
    ldd "$devlibs.tmp"/bin/clsynth "$devlibs.tmp"/bin/tests/test_* 2>/dev/null |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
        grep -Ev '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
        while read -r lib; do cp -L "$lib" "$devlibs.tmp/lib/"; done
    git -C "$root" rev-parse HEAD >"$devlibs.tmp/commit.txt" 2>/dev/null || true
    rm -rf "$devlibs"
    mv "$devlibs.tmp" "$devlibs"
    echo "device_check: bundled into $devlibs ($(du -sh "$devlibs" | cut -f1)): $(ls "$devlibs/lib" | tr '\n' ' ')"
}

impl=nvidia
budget=480
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bundle) bundle; exit 0 ;;
    --impl) impl=${2:?}; shift 2 ;;
    --budget) budget=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "device_check: unknown option $1" >&2; usage ;;
    *) out=$1; shift ;;
    esac
done
[ -n "$out" ] || usage
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
start=$(date +%s)
deadline=$((start + budget))
summary="$out/summary.md"
status=0

left() { echo $((deadline - $(date +%s))); }
note() { echo "$*" | tee -a "$summary"; }
# Seconds for a step: its cap, or what is left minus what later steps reserve.
slot() {
    local cap=$1 reserve=$2 l
    l=$(($(left) - reserve))
    [ "$l" -lt "$cap" ] && cap=$l
    [ "$cap" -lt 5 ] && cap=0
    echo "$cap"
}

# ---- binaries: the build folder, else the bundle ----
if [ -x "$root/build/clsynth" ]; then
    bin="$root/build/clsynth"
    tests_dir="$root/build/tests"
elif [ -x "$devlibs/bin/clsynth" ]; then
    bin="$devlibs/bin/clsynth"
    tests_dir="$devlibs/bin/tests"
else
    echo "device_check: no build/clsynth and no .devlibs/bin/clsynth (run tools/device_check.sh --bundle on the build machine)" | tee "$out/error.txt" >&2
    exit 1
fi

{
    echo "# clsynth device check"
    echo
    echo "- started: $(date -u +%FT%TZ), budget ${budget} s, implementation: $impl"
    echo "- commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || cat "$devlibs/commit.txt" 2>/dev/null || echo unknown)"
    echo "- binaries: $bin"
    echo "- machine: $(uname -srm), $(nproc) CPUs"
} >"$summary"
nvidia-smi -L >"$out/nvidia-smi.txt" 2>&1 && note "- GPU: $(head -n 1 "$out/nvidia-smi.txt")"
nvidia-smi >>"$out/nvidia-smi.txt" 2>&1

# ---- libraries: the system's where they resolve, .devlibs/lib for the rest ----
missing_libs() { ldd "$bin" "$tests_dir"/test_* 2>&1 | awk '/not found/ { print $1 }' | sort -u; }
if [ -n "$(missing_libs)" ] && [ -d "$devlibs/lib" ]; then
    export LD_LIBRARY_PATH="$devlibs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    note "- libraries from .devlibs/lib: $(ls "$devlibs/lib" | tr '\n' ' ')"
fi
ldd "$bin" >"$out/ldd.txt" 2>&1
if [ -n "$(missing_libs)" ] || grep -q "version .* not found" "$out/ldd.txt"; then
    note "- FAILED: shared libraries missing or too old: $(missing_libs | tr '\n' ' ') $(grep -o "version .* not found" "$out/ldd.txt" | sort -u | tr '\n' ' ')"
    note "  (on the build machine: tools/device_check.sh --bundle, then bring .devlibs along)"
    exit 1
fi

# ---- the implementation ----
if ! exports=$("$root/tools/opencl-drivers.sh" env "$impl" 2>"$out/driver.txt"); then
    note "- FAILED: implementation $impl is not usable here: $(cat "$out/driver.txt")"
    exit 1
fi
eval "$exports"
echo "$exports" >"$out/env.txt"
# Scratch space outside OUTDIR (the tests' files, program binaries, the tuning database,
# which is exported below); the caller's CLSYNTH_CACHE_DIR is used (and kept) if set, to
# reuse compiled programs.
work="${TMPDIR:-/tmp}/clsynth-device-check.$$"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
export CLSYNTH_CACHE_DIR="${CLSYNTH_CACHE_DIR:-$work/cache}"
shared="$root/shared"
[ -d "$shared" ] || shared="$root/../shared"
note "- selected: $(echo "$exports" | tr '\n' ' ')"

step() { # name seconds command...: runs with a timeout, logs to OUTDIR/<name>.log
    local name=$1 secs=$2 t0 rc
    shift 2
    if [ "$secs" -le 0 ]; then
        note "| $name | not run: out of budget | |"
        status=1
        return 1
    fi
    t0=$(date +%s)
    timeout -k 5 "$secs" "$@" >"$out/$name.log" 2>&1
    rc=$?
    local dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then
        note "| $name | passed | ${dt} s |"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        note "| $name | timed out after ${secs} s | ${dt} s |"
        status=1
    else
        note "| $name | FAILED (exit $rc, see $name.log) | ${dt} s |"
        status=1
    fi
    return $rc
}

note ""
note "| step | result | time |"
note "|---|---|---|"
step devices 30 "$bin" devices || { note "no device: nothing else to run"; exit 1; }
cp "$out/devices.log" "$out/devices.txt"

# Unit suite: every non-slow test binary, one log each, at most 90 s each and 220 s in all
# (tune 90 s, bench 100 s and PyTorch 40 s are reserved after it); the op tests first, the
# model-level ones last.
mkdir -p "$out/tests"
suite_t0=$(date +%s)
suite_secs=$(slot 220 230)
passed=0 failed=0 skipped=0
late="test_segmenter test_ablate test_tuner test_model_gradients test_training test_model"
for t in $(ls "$tests_dir"/test_* | grep -Ev "/(test_slow_[^/]*|${late// /|})$") \
         $(for n in $late; do echo "$tests_dir/$n"; done); do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    secs=$((suite_t0 + suite_secs - $(date +%s)))
    [ "$secs" -gt 90 ] && secs=90
    [ "$secs" -lt 5 ] && secs=0
    mkdir -p "$work/scratch/$name"
    if [ "$secs" -le 0 ]; then
        echo "$name: not run (out of budget)" >>"$out/tests/summary.txt"
        skipped=$((skipped + 1))
        continue
    fi
    t0=$(date +%s)
    (cd "$work/scratch/$name" && CLSYNTH_SOURCE_DIR="$root" CLSYNTH_SHARED_DIR="$shared" \
        CLSYNTH_BIN="$bin" timeout -k 5 "$secs" "$t") >"$out/tests/$name.log" 2>&1
    rc=$?
    dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); r=passed; else failed=$((failed + 1)); r="FAILED (exit $rc)"; fi
    echo "$name: $r, ${dt} s" >>"$out/tests/summary.txt"
done
suite_dt=$(($(date +%s) - suite_t0))
[ $failed -eq 0 ] && [ $skipped -eq 0 ] || status=1
note "| unit suite | $passed passed, $failed failed, $skipped not run (tests/summary.txt) | ${suite_dt} s |"

tsecs=$(slot 90 140)
# the tuner's budget covers its whole run; 40 % slack for the worker processes' start-up
step tune "$tsecs" "$bin" tune --preset tiny --budget $((tsecs * 6 / 10 > 10 ? tsecs * 6 / 10 : 10))
"$bin" tune --export "$out/tunedb.txt" >>"$out/tune.log" 2>&1 # what was tuned, even when cut short
step bench "$(slot 100 40)" "$bin" bench all --quick --json "$out/bench.json"

if python3 -c 'import torch' 2>/dev/null; then
    step torch "$(slot 40 0)" python3 "$root/tools/torch_ops_bench.py" --json "$out/torch.json"
else
    note "| torch | not run: no PyTorch here | |"
fi
note ""
note "- finished: $(date -u +%FT%TZ), $(($(date +%s) - start)) s of ${budget} s"
exit $status
