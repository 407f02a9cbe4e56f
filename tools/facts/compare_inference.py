#!/usr/bin/env python3
"""Check the facts analysis against onnx's shape inference, value by value.

Usage:
    compare_inference.py CORPUS_DIR INFER_BINARY [--jobs N] [--show N] [--json OUT]

For every `model.onnx` under CORPUS_DIR (recursively), runs `INFER_BINARY path`, which prints
one line per value of the main graph, `name<TAB>dtype<TAB>dims` (dims `[N,3,?]`, or `?` when the
rank is unknown), as `crates/egraph/examples/infer_model.rs` does. Compares each value with
`onnx.shape_inference.infer_shapes(model, data_prop=True)` (graph inputs, outputs, value_info).

A contradiction is a different dtype, a different rank, or two different known sizes of one
dim. It must never happen: the analysis may know less than onnx, never something else. Knowing
less is counted ("onnx knows more"), by the op type that produced the value, and so is knowing
more (onnx failing, or a symbolic onnx dim that ours has a value for).

Exit status: 0 when there is no contradiction, 1 otherwise.

Build the binary with:
    cargo build --release -p onnx-rewrite-egraph --example infer_model
    # -> target/release/examples/infer_model
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import pathlib
import subprocess
import sys

import onnx
import onnx.shape_inference

Dims = list[str] | None  # None: unknown rank; each dim: a decimal value or a symbol


def onnx_facts(model: onnx.ModelProto) -> tuple[dict[str, tuple[str | None, Dims]], str]:
    """onnx's view: value name -> (dtype name or None, dims). Returns (facts, error)."""
    error = ""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as e:  # noqa: BLE001 - fall back to the declared types
        inferred = model
        error = f"{type(e).__name__}: {e}".splitlines()[0]
    facts: dict[str, tuple[str | None, Dims]] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        dtype = onnx.TensorProto.DataType.Name(tt.elem_type).lower() if tt.elem_type else None
        dims: Dims = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(str(d.dim_value))
                elif d.HasField("dim_param"):
                    dims.append(d.dim_param)
                else:
                    dims.append("?")
        facts.setdefault(vi.name, (dtype, dims))
    for init in g.initializer:
        facts.setdefault(
            init.name,
            (onnx.TensorProto.DataType.Name(init.data_type).lower(), [str(d) for d in init.dims]),
        )
    return facts, error


def parse_ours(text: str) -> dict[str, tuple[str | None, Dims]]:
    ours: dict[str, tuple[str | None, Dims]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        name, dtype, dims = parts[0], parts[1], parts[2]
        ours[name] = (None if dtype == "?" else dtype, None if dims == "?" else dims[1:-1].split(",") if dims != "[]" else [])
    return ours


def known(d: str) -> bool:
    return d.isdigit()


def compare_value(ours: tuple[str | None, Dims], theirs: tuple[str | None, Dims]) -> tuple[list[str], bool, bool]:
    """(contradictions, onnx knows more, ours knows more)."""
    (od, os_), (td, ts) = ours, theirs
    bad: list[str] = []
    onnx_more = ours_more = False
    if od and td and od != td:
        bad.append(f"dtype {od} vs onnx {td}")
    onnx_more |= td is not None and od is None
    ours_more |= od is not None and td is None
    if os_ is not None and ts is not None:
        if len(os_) != len(ts):
            bad.append(f"rank {len(os_)} [{','.join(os_)}] vs onnx {len(ts)} [{','.join(ts)}]")
        else:
            for i, (a, b) in enumerate(zip(os_, ts)):
                if known(a) and known(b) and a != b:
                    bad.append(f"dim {i}: {a} vs onnx {b} ([{','.join(os_)}] vs [{','.join(ts)}])")
                onnx_more |= known(b) and not known(a)
                ours_more |= known(a) and not known(b)
    else:
        onnx_more |= ts is not None and os_ is None
        ours_more |= os_ is not None and ts is None
    return bad, onnx_more, ours_more


def check(path: pathlib.Path, binary: str) -> dict:
    model = onnx.load(str(path), load_external_data=False)
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    # Graph outputs carry the types their writer declared (in the node-test corpus, those of
    # the expected outputs), which no forward inference can derive from runtime inputs.
    declared = {o.name for o in model.graph.output}
    theirs, onnx_error = onnx_facts(model)
    result = subprocess.run([binary, str(path)], capture_output=True, check=False)
    out = {
        "model": str(path),
        "onnx_error": onnx_error,
        "rust_error": "",
        "compared": 0,
        "contradictions": [],
        "onnx_more": [],
        "onnx_more_declared": [],
        "ours_more": 0,
        "onnx_silent": 0,
    }
    if result.returncode != 0:
        out["rust_error"] = result.stderr.decode(errors="replace").strip()
        return out
    ours = parse_ours(result.stdout.decode("utf-8", errors="replace"))
    for name, facts in ours.items():
        op = producer.get(name, "<input>")
        if name not in theirs:
            out["onnx_silent"] += 1
            if facts[0] is not None or facts[1] is not None:
                out["ours_more"] += 1
            continue
        out["compared"] += 1
        bad, onnx_more, ours_more = compare_value(facts, theirs[name])
        for b in bad:
            out["contradictions"].append(f"{name} ({op}): {b}")
        if onnx_more:
            out["onnx_more_declared" if name in declared else "onnx_more"].append(op)
        if ours_more:
            out["ours_more"] += 1
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=pathlib.Path)
    parser.add_argument("binary")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--show", type=int, default=30, help="contradictions to show")
    parser.add_argument("--json", type=pathlib.Path, help="write per-model results here")
    args = parser.parse_args()

    paths = sorted(args.corpus.rglob("*.onnx"))
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(check, paths, [args.binary] * len(paths), chunksize=8))

    compared = sum(r["compared"] for r in results)
    contradictions = [(r["model"], c) for r in results for c in r["contradictions"]]
    onnx_more = collections.Counter(op for r in results for op in r["onnx_more"])
    declared_more = collections.Counter(op for r in results for op in r["onnx_more_declared"])
    print(f"models:                 {len(results)}")
    print(f"  onnx inference failed: {sum(1 for r in results if r['onnx_error'])} (declared types used)")
    print(f"  our tool failed:       {sum(1 for r in results if r['rust_error'])}")
    print(f"values compared:        {compared}")
    print(f"contradictions:         {len(contradictions)}")
    print(f"onnx knows more:        {sum(onnx_more.values()) + sum(declared_more.values())}")
    print(f"  by inference:          {sum(onnx_more.values())}")
    print(f"  from declared outputs: {sum(declared_more.values())}")
    print(f"ours knows more:        {sum(r['ours_more'] for r in results)}")
    print(f"values onnx says nothing about: {sum(r['onnx_silent'] for r in results)}")
    if onnx_more:
        print("onnx knows more by inference, by producing op:")
        for op, n in onnx_more.most_common(25):
            print(f"  {n:6d}  {op}")
    for model, c in contradictions[: args.show]:
        print(f"CONTRADICTION {pathlib.Path(model).parent.name}: {c}")
    for r in results:
        if r["rust_error"]:
            print(f"RUST ERROR {r['model']}: {r['rust_error']}")
    if declared_more:
        print("onnx knows more from declared graph outputs, by producing op:")
        for op, n in declared_more.most_common(10):
            print(f"  {n:6d}  {op}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if contradictions else 0


if __name__ == "__main__":
    sys.exit(main())
