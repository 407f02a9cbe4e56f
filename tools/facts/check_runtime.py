#!/usr/bin/env python3
"""Check the facts analysis against what onnxruntime actually computes.

Usage:
    check_runtime.py CORPUS_DIR INFER_BINARY [--jobs N] [--show N]

For every node-test case under CORPUS_DIR (`*/model.onnx` with `test_data_set_0/input_*.pb`),
runs `INFER_BINARY path --all-values` (see `crates/egraph/examples/infer_model.rs`), then runs
the model on onnxruntime (CPU, optimizations off) with every intermediate value of the main
graph exposed as an output, and checks each value the analysis describes against the tensor
the runtime produced:

* dtype, rank and every known dim must match;
* a constant must match element for element (floats bit for bit, NaN equal to NaN);
* a per-element dim (`dims(N,3,?)`) that is a number must match that element.

This catches what comparing with onnx's inference cannot: wrong folds, and known dims where
onnx knows nothing. Cases onnxruntime cannot run are skipped and counted.

Exit status: 0 when nothing disagrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import pathlib
import subprocess
import sys


def parse_values(text: str) -> list[str] | None:
    """The elements of a `const(...)` or `dims(...)` column, or None."""
    for prefix in ("const(", "dims("):
        if text.startswith(prefix) and text.endswith(")"):
            body = text[len(prefix) : -1]
            return [] if body == "" else body.split(",")
    return None


def same_float(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def check(case: pathlib.Path, binary: str) -> dict:
    import numpy as np
    import onnx
    import onnx.numpy_helper
    import onnxruntime as ort

    out: dict = {"case": case.name, "status": "ok", "checked": 0, "constants": 0, "problems": []}
    model_path = case / "model.onnx"
    data = case / "test_data_set_0"
    model = onnx.load(str(model_path))
    result = subprocess.run([binary, str(model_path), "--all-values"], capture_output=True, check=False)
    if result.returncode != 0:
        out["status"] = "rust-error"
        return out
    ours: dict[str, tuple[str, str, str]] = {}
    for line in result.stdout.decode().splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            ours[parts[0]] = (parts[1], parts[2], parts[3])

    graph_inputs = [i.name for i in model.graph.input]
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for k, name in enumerate(n for n in graph_inputs if n not in inits):
        pb = data / f"input_{k}.pb"
        if not pb.exists():
            out["status"] = "no-data"
            return out
        t = onnx.TensorProto()
        try:
            t.ParseFromString(pb.read_bytes())
            feeds[name] = onnx.numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - sequences, optionals: not our business here
            out["status"] = "unsupported-input"
            return out

    # Expose every node output as a graph output (types left for onnxruntime to infer).
    existing = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in existing:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                existing.add(name)
    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.log_severity_level = 4
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        values = sess.run(names, feeds)
    except Exception as e:  # noqa: BLE001 - cases the runtime cannot run are skipped
        out["status"] = "ort-error"
        out["error"] = str(e).splitlines()[0][:200]
        return out

    actual = dict(zip(names, values))
    actual.update(feeds)
    for name, (dtype, dims, vals) in ours.items():
        if name not in actual or not isinstance(actual[name], np.ndarray):
            continue
        a = actual[name]
        out["checked"] += 1
        try:
            a_dtype = onnx.helper.np_dtype_to_tensor_dtype(a.dtype)
            a_dtype_name = onnx.TensorProto.DataType.Name(a_dtype).lower()
        except Exception:  # noqa: BLE001
            a_dtype_name = str(a.dtype)
        # numpy has no 8-bit or 4-bit float types: onnxruntime hands those back as raw bytes.
        narrow = dtype.startswith(("float8", "float4", "int4", "uint4", "int2", "uint2"))
        if dtype != "?" and dtype != a_dtype_name and not narrow:
            out["problems"].append(f"{name}: dtype {dtype} vs runtime {a_dtype_name}")
        if dims != "?":
            d = [] if dims == "[]" else dims[1:-1].split(",")
            if len(d) != a.ndim:
                out["problems"].append(f"{name}: rank {dims} vs runtime {list(a.shape)}")
            elif any(x.lstrip("-").isdigit() and int(x) != y for x, y in zip(d, a.shape)):
                out["problems"].append(f"{name}: dims {dims} vs runtime {list(a.shape)}")
        elems = parse_values(vals)
        if elems is None or (elems and elems[-1] == ".."):
            continue
        flat = a.reshape(-1)
        if len(elems) != flat.size:
            out["problems"].append(f"{name}: {len(elems)} elements vs runtime {flat.size}")
            continue
        if vals.startswith("const("):
            out["constants"] += 1
        for i, (e, x) in enumerate(zip(elems, flat.tolist())):
            if e in ("?",) or not (e[:1].isdigit() or e[:1] in "-+" or e in ("true", "false", "NaN", "inf")):
                continue  # a symbol
            if e in ("true", "false"):
                ok = (e == "true") == bool(x)
            elif isinstance(x, float):
                # Our text is the shortest form that round-trips in the element type.
                ours_v = float(np.asarray(float(e), dtype=a.dtype))
                ok = same_float(ours_v, float(np.asarray(x, dtype=a.dtype)))
            else:
                ok = int(e) == int(x)
            if not ok:
                out["problems"].append(f"{name}: element {i} is {e}, runtime {x}")
                break
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=pathlib.Path)
    parser.add_argument("binary")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--show", type=int, default=40)
    args = parser.parse_args()

    cases = sorted(p.parent for p in args.corpus.glob("*/model.onnx"))
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(check, cases, [args.binary] * len(cases), chunksize=8))

    status: dict[str, int] = {}
    for r in results:
        status[r["status"]] = status.get(r["status"], 0) + 1
    problems = [(r["case"], p) for r in results for p in r["problems"]]
    print(f"cases:            {len(results)}  {status}")
    print(f"values checked:   {sum(r['checked'] for r in results)}")
    print(f"constants checked: {sum(r['constants'] for r in results)}")
    print(f"disagreements:    {len(problems)}")
    for case, p in problems[: args.show]:
        print(f"DISAGREE {case}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
