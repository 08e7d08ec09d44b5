#!/usr/bin/env bash
# The GPU check of issue 17, run from the repository root on the GPU machine:
#   export PYTHONPATH=$PWD:/tmp/site   # numpy 2.4 there: numba-cuda 0.30.4 fails with numpy 2.5
#   OUT=/some/dir bash benchmarks/run_gpu.sh
# No installs, no network. Writes under $OUT (4 files): env.log, gpu_tests.log, bench.log, gpu.md.
# Each step has its own timeout so that one hang or failure does not lose the others (~4 min in all).
set -u
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH=${PYTHONPATH:-$PWD}
export PYTHONDONTWRITEBYTECODE=1
PY=${PYTHON:-python3}
start=$(date +%s)
stamp() { echo "[run_gpu $(( $(date +%s) - start )) s] $*"; }

{
  stamp "environment"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  uptime
  nproc
  timeout 60 "$PY" -c "
import sys, numpy, numba, cupy
print('python', sys.version.split()[0], 'numpy', numpy.__version__, numpy.__file__)
print('numba', numba.__version__, 'cupy', cupy.__version__)
from numba import cuda
print('numba.cuda.is_available', cuda.is_available(), 'devices', cupy.cuda.runtime.getDeviceCount())
" 2>&1
} > "$OUT/env.log" 2>&1
cat "$OUT/env.log"

stamp "gpu tests"
timeout -k 5 110 "$PY" -m pytest -q -m gpu tests -p no:cacheprovider -rs --durations=15 \
  2>&1 | tee "$OUT/gpu_tests.log"
stamp "gpu tests done (exit ${PIPESTATUS[0]})" | tee -a "$OUT/gpu_tests.log"

stamp "benchmark"
timeout -k 5 130 "$PY" benchmarks/bench_gpu.py --out "$OUT/gpu.md" 2>&1 | tee "$OUT/bench.log"
stamp "benchmark done (exit ${PIPESTATUS[0]})" | tee -a "$OUT/bench.log"
