#!/usr/bin/env python3
"""Share of converted nodes: onnx-rewrite's fp16 pass against onnxruntime's converter.

On every ONNX node-test case that onnxruntime passes in float32 (the baseline cache that
tools/conformance/run_corpus.py keeps), both converters run on the same copy of the model
(unnamed nodes given unique names first, so nodes can be matched across the outputs):

* onnx-rewrite: ``TOOL apply model.onnx -o out.onnx --passes fp16`` (default options);
* onnxruntime: ``onnxruntime.transformers.float16.convert_float_to_float16(model,
  keep_io_types=True)`` (keep_io_types as the pass's default and ORT's ``OnnxModel`` wrapper).

A node *was float* when one of its outputs is float32 in the original and *is converted* when the
node of the same name has a float16 output in the converted model (types from ONNX shape
inference, value_info and graph I/O). Each converted model is also loaded and run on onnxruntime
CPU and compared with the float32 model's outputs at rtol = atol = 2e-2 (the DESIGN row).

    .venv/bin/python tools/fp16/compare_share.py --tool target/release/onnx-rewrite [--type bfloat16] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "conformance"))

FLOAT, FLOAT16, BFLOAT16 = 1, 10, 16


def graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from graphs(attr.g)
            for g in attr.graphs:
                yield from graphs(g)


def name_nodes(model) -> None:
    taken = {n.name for g in graphs(model.graph) for n in g.node if n.name}
    counter = 0
    for g in graphs(model.graph):
        for node in g.node:
            if not node.name:
                while f"n{counter}" in taken:
                    counter += 1
                node.name = f"n{counter}"
                taken.add(node.name)


def elem_types(model) -> dict[str, int]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - fall back to what the model declares
        inferred = model
    types: dict[str, int] = {}
    for g in graphs(inferred.graph):
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
                types.setdefault(vi.name, vi.type.tensor_type.elem_type)
        for t in g.initializer:
            types.setdefault(t.name, t.data_type)
        for node in g.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                types.setdefault(node.output[0], node.attribute[0].t.data_type)
            elif node.op_type == "Constant" and node.attribute and node.attribute[0].name.startswith("value_float"):
                types.setdefault(node.output[0], FLOAT)
            elif node.op_type == "Cast":
                to = next((a.i for a in node.attribute if a.name == "to"), 0)
                types.setdefault(node.output[0], to)
    return types


def node_types(model) -> dict[str, set[int]]:
    types = elem_types(model)
    return {n.name: {types.get(o, 0) for o in n.output if o} for g in graphs(model.graph) for n in g.node}


def run_and_compare(path: Path, case_dir: Path, reference, tol: float) -> str:
    import onnx
    import run_corpus as rc

    model = onnx.load(str(case_dir / "model.onnx"), load_external_data=False)
    try:
        session = rc.make_session(path)
    except Exception as exc:  # noqa: BLE001
        return f"load: {rc.short_error(exc, 120)}"
    names = [o.name for o in model.graph.output]
    mode = rc.CompareMode(rc.Tolerance(tol, tol), allow_low_precision=True, onnx_bfloat16_rule=False)
    for (feeds, _), ref in zip(rc.load_data_sets(case_dir, model), reference, strict=True):
        try:
            got = rc.run_session(session, rc.adapt_feeds(session, feeds), names)
        except Exception as exc:  # noqa: BLE001
            return f"run: {rc.short_error(exc, 120)}"
        problem = rc.compare_outputs(ref, got, names, mode)
        if problem:
            return f"mismatch: {problem[:120]}"
    return "ok"


def process(job: tuple[str, str, str, str]) -> dict:
    """One case; a crash in the harness is recorded as the case's result, never raised."""
    try:
        return process_case(job)
    except Exception as exc:  # noqa: BLE001 - one broken case must not stop the survey
        return {"case": job[0], "float_nodes": 0, "ours_converted": 0, "ort_converted": 0,
                "ours_result": f"harness: {type(exc).__name__}: {str(exc)[:100]}",
                "ort_result": f"harness: {type(exc).__name__}: {str(exc)[:100]}"}


def process_case(job: tuple[str, str, str, str]) -> dict:
    import onnx
    import onnxruntime as ort
    import run_corpus as rc
    from onnxruntime.transformers.float16 import convert_float_to_float16

    ort.set_default_logger_severity(4)
    case, case_dir, tool, low = job
    tol = 2e-2 if low == "float16" else 5e-2
    case_dir = Path(case_dir)
    out = {"case": case}
    with tempfile.TemporaryDirectory(prefix="share-") as tmp:
        tmp = Path(tmp)
        model = onnx.load(str(case_dir / "model.onnx"))
        name_nodes(model)
        named = tmp / "named.onnx"
        onnx.save(model, str(named))
        data = rc.load_data_sets(case_dir, model)
        session = rc.make_session(named)
        reference = [rc.run_session(session, feeds, [o.name for o in model.graph.output]) for feeds, _ in data]
        before = node_types(model)
        floats = {n for n, ts in before.items() if FLOAT in ts}
        out["float_nodes"] = len(floats)

        ours = tmp / "ours.onnx"
        proc = subprocess.run([tool, "apply", str(named), "-o", str(ours), "--passes", "fp16", "--fp16-type", low, "-q"], capture_output=True)
        if proc.returncode == 0:
            after = node_types(onnx.load(str(ours)))
            out["ours_converted"] = sum(1 for n in floats if after.get(n, set()) & {FLOAT16, BFLOAT16})
            out["ours_result"] = run_and_compare(ours, case_dir, reference, tol)
        else:
            out["ours_converted"] = 0
            out["ours_result"] = f"tool exit {proc.returncode}"

        theirs = tmp / "ort.onnx"
        try:
            if low != "float16":
                raise RuntimeError("onnxruntime's converter has no bfloat16 target")
            converted = convert_float_to_float16(onnx.load(str(named)), keep_io_types=True)
            onnx.save(converted, str(theirs))
            after = node_types(converted)
            out["ort_converted"] = sum(1 for n in floats if after.get(n, set()) & {FLOAT16, BFLOAT16})
            out["ort_result"] = run_and_compare(theirs, case_dir, reference, tol)
        except Exception as exc:  # noqa: BLE001 - the converter's own failure is a result
            out["ort_converted"] = 0
            out["ort_result"] = f"converter: {type(exc).__name__}: {str(exc)[:100]}"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--corpus", type=Path, default=ROOT / "target" / "corpus")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--filter", default="")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--type", choices=["float16", "bfloat16"], default="float16",
                    help="our target type (ORT's converter has float16 only; bfloat16 rates ours alone at 5e-2)")
    args = ap.parse_args()
    cache = json.loads((args.corpus / ".baseline-cache.json").read_text())["cases"]
    cases = sorted(n for n, b in cache.items() if b["ort_pass"] and args.filter in n)
    tool = str(Path(args.tool).resolve())
    jobs = [(c, str(args.corpus / c), tool, args.type) for c in cases]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        results = list(pool.map(process, jobs, chunksize=4))
    total = sum(r["float_nodes"] for r in results)
    ours = sum(r["ours_converted"] for r in results)
    theirs = sum(r["ort_converted"] for r in results)
    ok = lambda key: sum(r[key] == "ok" for r in results)  # noqa: E731
    with_float = [r for r in results if r["float_nodes"]]
    # A conversion counts only in a model that still loads, runs and matches.
    working = lambda key, result: sum(r[key] for r in results if r[result] == "ok")  # noqa: E731
    both = [r for r in results if r["ours_result"] == "ok" and r["ort_result"] == "ok"]
    per_case = lambda key: sum(r[key] / r["float_nodes"] for r in with_float) / max(1, len(with_float))  # noqa: E731
    summary = {
        "cases": len(results),
        "cases_with_float_nodes": len(with_float),
        "float_nodes": total,
        "onnx_rewrite": {"converted": ours, "share": ours / max(1, total), "mean_case_share": per_case("ours_converted"), "load_run_match": ok("ours_result"),
                         "converted_in_matching_models": working("ours_converted", "ours_result")},
        "onnxruntime": {"converted": theirs, "share": theirs / max(1, total), "mean_case_share": per_case("ort_converted"), "load_run_match": ok("ort_result"),
                        "converted_in_matching_models": working("ort_converted", "ort_result")},
        # The cases where both converted models load, run and match: the like-for-like figure.
        "both_match": {"cases": len(both), "float_nodes": sum(r["float_nodes"] for r in both),
                       "onnx_rewrite": sum(r["ours_converted"] for r in both), "onnxruntime": sum(r["ort_converted"] for r in both)},
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cases": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
