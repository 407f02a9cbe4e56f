#!/usr/bin/env python3
"""Ground truth for `onnx-rewrite analyze --ep cuda`: the Memcpy nodes onnxruntime-gpu inserts.

For each model, creates an onnxruntime session with the CUDA EP (and the CPU EP behind it) at
`ORT_ENABLE_BASIC` with `optimized_model_filepath` set, and counts the `MemcpyFromHost` /
`MemcpyToHost` nodes of the optimized graph (subgraphs included), with the tensor each copies.
Needs a machine with an NVIDIA GPU and `onnxruntime-gpu` (the version the predictor pins).

    # models given on the command line (ONNX files, or ONNX text syntax *.onnxtxt)
    python tools/memcpy/measure_memcpy.py a.onnx b.onnxtxt

    # everything in tools/memcpy/measure_list.json, before and after `--passes hoist-scalars`,
    # written where the predictor's test reads it; plus the CUDA kernel table of this build
    python tools/memcpy/measure_memcpy.py --list tools/memcpy/measure_list.json \\
        --tool target/release/onnx-rewrite \\
        --out passes/hoist-scalars/tests/fixtures/memcpy_ground_truth.json \\
        --dump-kernels passes/hoist-scalars/tests/fixtures/cuda_kernels.json

Prints JSON (also to --out). An optimized model saved with Memcpy nodes only loads with the CUDA
EP (onnxruntime#11348): the files are written to a temporary folder and never kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx
import onnx.parser
import onnxruntime as ort

# onnxruntime-gpu installed with the [cuda,cudnn] extras loads the CUDA libraries from their wheels.
if hasattr(ort, "preload_dlls"):
    try:
        ort.preload_dlls()
    except Exception:  # noqa: BLE001 - a system CUDA install works without it
        pass

ROOT = Path(__file__).resolve().parents[2]
COPY_OPS = ("MemcpyFromHost", "MemcpyToHost")


def load(path: Path) -> onnx.ModelProto:
    if path.suffix == ".onnxtxt":
        return onnx.parser.parse_model(path.read_text())
    return onnx.load(str(path), load_external_data=False)


def as_onnx_file(path: Path, tmp: Path) -> Path:
    """ONNX text fixtures are parsed and saved; ONNX files are used where they are (external data)."""
    if path.suffix != ".onnxtxt":
        return path
    out = tmp / f"{path.stem}.onnx"
    onnx.save(load(path), str(out))
    return out


def copies(graph: onnx.GraphProto, where: str = "main graph") -> list[dict]:
    found = []
    for node in graph.node:
        if node.op_type in COPY_OPS and node.domain in ("", "ai.onnx"):
            found.append({"graph": where, "kind": node.op_type, "tensor": node.input[0]})
        for attr in node.attribute:
            subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in subs:
                found.extend(copies(sub, f"subgraph '{attr.name}' of '{node.name}'"))
    return found


def measure(model_path: Path, tmp: Path) -> dict:
    optimized = tmp / f"{model_path.stem}.optimized.onnx"
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(optimized)
    so.log_severity_level = 3
    sess = ort.InferenceSession(
        str(model_path), so, providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    if "CUDAExecutionProvider" not in sess.get_providers():
        raise RuntimeError("the CUDA execution provider is not available in this session")
    found = copies(onnx.load(str(optimized), load_external_data=False).graph)
    for f in optimized.parent.glob(optimized.name + "*"):
        f.unlink()
    return {
        "memcpy": len(found),
        "memcpy_from_host": sum(c["kind"] == "MemcpyFromHost" for c in found),
        "memcpy_to_host": sum(c["kind"] == "MemcpyToHost" for c in found),
        "copies": found,
    }


def rewrite(tool: Path, src: Path, tmp: Path, name: str) -> Path:
    out = tmp / f"{name}.after.onnx"
    proc = subprocess.run(
        [str(tool), "apply", str(src), "-o", str(out), "--passes", "hoist-scalars", "-q"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"onnx-rewrite apply failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    return out


def dump_kernels(path: Path) -> None:
    """The CUDA EP's kernel registrations of this build (for tools/ort/gen_kernel_tables.py)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    defs = [
        {"domain": k.domain, "op_name": k.op_name, "version_range": list(k.version_range),
         "type_constraints": {n: list(t) for n, t in k.type_constraints.items()}}
        for k in C.get_all_opkernel_def()
        if k.provider == "CUDAExecutionProvider"
    ]
    if not defs:
        raise RuntimeError("get_all_opkernel_def() lists no CUDA kernel: is this onnxruntime-gpu?")
    defs.sort(key=lambda d: (d["domain"], d["op_name"], d["version_range"]))
    path.write_text(json.dumps({"onnxruntime": ort.__version__, "kernels": {"CUDAExecutionProvider": defs}}, indent=0) + "\n")
    print(f"{path}: {len(defs)} CUDA kernel registrations", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, help="models to measure as they are")
    ap.add_argument("--list", type=Path, help="a measure list (tools/memcpy/measure_list.json)")
    ap.add_argument("--tool", type=Path, help="the onnx-rewrite binary, for the 'after' variants of --list")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--dump-kernels", type=Path, help="write the CUDA kernel table of this onnxruntime build here")
    args = ap.parse_args()
    if args.list and not args.tool:
        ap.error("--list needs --tool (the 'after' variants are made with it)")

    results = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        jobs = [(p.stem, p, "as given", None) for p in args.models]
        if args.list:
            listed = json.loads(args.list.read_text())
            for entry in listed["models"]:
                src = ROOT / entry["path"]
                if not src.exists():
                    print(f"skip {entry['name']}: {entry['path']} is not here", file=sys.stderr)
                    continue
                for variant in entry.get("variants", ["before", "after"]):
                    jobs.append((entry["name"], src, variant, entry["path"]))
        for name, src, variant, rel in jobs:
            record = {"name": name, "path": rel or str(src), "variant": variant}
            try:
                model = as_onnx_file(src, tmp)
                if variant == "after":
                    model = rewrite(args.tool, model, tmp, name)
                record.update(measure(model, tmp))
            except Exception as e:  # noqa: BLE001 - recorded, the other models still run
                record["error"] = str(e).splitlines()[0][:300]
            print(f"{name:<40} {variant:<8} {record.get('memcpy', record.get('error'))}", file=sys.stderr)
            results.append(record)
    if args.dump_kernels:
        dump_kernels(args.dump_kernels)
    gpu = ""
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - the device name is informative only
        pass
    report = {
        "onnxruntime": ort.__version__,
        "optimization_level": "ORT_ENABLE_BASIC",
        "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "device": gpu,
        "platform": platform.platform(),
        "models": results,
    }
    text = json.dumps(report, indent=1) + "\n"
    if args.out:
        args.out.write_text(text)
    sys.stdout.write(text)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
