#!/usr/bin/env bash
# Records onnxruntime-gpu's Memcpy counts (the ground truth of `onnx-rewrite analyze --ep cuda`)
# and its CUDA kernel table, on a machine with an NVIDIA GPU. Run from the repository root, with
# the release binary built (or carried) at target/release/onnx-rewrite:
#
#   bash tools/memcpy/gpu_ground_truth.sh                     # pip installs from the index
#   WHEELS=/path/to/wheels bash tools/memcpy/gpu_ground_truth.sh   # offline: pip --no-index
#
# Writes, for the lead to commit:
#   passes/hoist-scalars/tests/fixtures/memcpy_ground_truth.json   (the predictor's test reads it)
#   passes/hoist-scalars/tests/fixtures/cuda_kernels.json          (the table's test reads it)
# Then, to make the predictor's CUDA table exact for this onnxruntime build:
#   python tools/ort/gen_kernel_tables.py --cuda-kernel-defs passes/hoist-scalars/tests/fixtures/cuda_kernels.json
set -euo pipefail
cd "$(dirname "$0")/../.."
tool="${TOOL:-target/release/onnx-rewrite}"
[ -x "$tool" ] || { echo "no $tool: build it (cargo build --release -p onnx-rewrite-cli) or set TOOL" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
venv="${VENV:-/tmp/memcpy-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
[ -n "${WHEELS:-}" ] && pip+=(--no-index --find-links "$WHEELS")
# [cuda,cudnn] pulls the CUDA runtime, cuBLAS and cuDNN wheels the provider loads.
"${pip[@]}" "onnxruntime-gpu[cuda,cudnn]==1.32.0" "onnx==1.23.2" numpy
fixtures=passes/hoist-scalars/tests/fixtures
"$venv/bin/python" tools/memcpy/measure_memcpy.py --list tools/memcpy/measure_list.json --tool "$tool" \
    --out "$fixtures/memcpy_ground_truth.json" --dump-kernels "$fixtures/cuda_kernels.json" > /dev/null
echo "written: $fixtures/memcpy_ground_truth.json $fixtures/cuda_kernels.json"
