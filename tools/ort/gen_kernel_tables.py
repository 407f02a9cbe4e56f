#!/usr/bin/env python3
"""Generate ONNX Runtime's tables for the pinned version: the one source of truth that
`onnx-rewrite analyze --ep cuda` (hoist-scalars' placement predictor) and `fp16 --fp16-target`
both read, through the crate `onnx-rewrite-ort-kernels`.

Writes `crates/ort-kernels/src/ort-<version>.json`:

- `schemas`: every operator schema the pinned ORT build knows (domains `""`, `ai.onnx.ml`,
  `com.microsoft`): its `since_version`s and formal inputs/outputs (name, type string,
  single/optional/variadic). A node's `SinceVersion()` in ORT is the largest schema version
  not above the model's opset import; the formal parameters bind a kernel's type constraints
  to the node's inputs and outputs.
- `functions`: the (domain, op, since_version)s whose ONNX schema has a function body (from the
  pinned `onnx` package): ORT inlines such a node before partitioning when no EP has a kernel.
- `kernels.CPUExecutionProvider`: read from the installed `onnxruntime` wheel
  (`get_all_opkernel_def()`), exact for that version. Typed registrations stay apart.
- `kernels.CUDAExecutionProvider`: from one of
  - `--cuda-kernel-defs FILE`: the JSON `tools/memcpy/measure_memcpy.py --dump-kernels` writes
    on a GPU machine with `onnxruntime-gpu` (exact for that version), or
  - `--cuda-operator-kernels FILE`: ORT's `docs/OperatorKernels.md` (CUDA section) from a
    source snapshot, plus the registration changes listed in `CUDA_DELTAS` that were merged
    after that snapshot (each with the pull request it comes from).

With `--schema-table` it also rewrites `crates/ort-kernels/src/schema/table.rs` (the
compiled-in schema table, from the same `get_all_operator_schema()`); the fp16 kernel tables
are no longer generated: fp16 asks `crates/ort-kernels` (the shared JSON) at run time.

Memory types (which kernel inputs/outputs live in CPU memory) are not exported by either
source; they are kept by hand in `crates/ort-kernels/src/memory.rs`.

Usage (the committed table was made with the second form):

    python tools/ort/gen_kernel_tables.py --cuda-kernel-defs cuda_kernels.json
    git -C <onnxruntime checkout> show 735e69a39:docs/OperatorKernels.md > /tmp/OperatorKernels.md
    python tools/ort/gen_kernel_tables.py --cuda-operator-kernels /tmp/OperatorKernels.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = {"", "ai.onnx.ml", "com.microsoft"}
OPEN = None  # an open-ended registration (`N+` in OperatorKernels.md)

# CUDA registrations merged into onnxruntime main after the OperatorKernels.md snapshot
# (735e69a39, 2026-02-13) that the committed table starts from. Each entry: (pull request,
# domain, op, what it does). `split_open(op, at, also)` turns the open registration `s+` into
# `[s, at-1]` and adds `[a, b]` ranges / a new open one, all with the same types.
CUDA_DELTAS = [
    # "Add opset 21/23 CUDA kernel registrations for Flatten, Identity, If, Loop, Scan,
    # ConstantOfShape, Size" (merged 2026-03), the pattern of #26075 (Shape/Reshape/...):
    # the open registration ends at 20, then [21, 22] and 23+.
    *[("#27728", "", op, (21, [(21, 22), (23, OPEN)]))
      for op in ["Flatten", "Identity", "If", "Loop", "Scan", "ConstantOfShape", "Size"]],
    # "[CUDA EP] Add resize op version 19 support for CUDA" (merged 2026-02).
    ("#27415", "", "Resize", (19, [(19, OPEN)])),
    # "Integrate ONNX 1.22.0 (opset 27)": CUDA Range split into [11, 26] + 27.
    ("#28754", "", "Range", (27, [(27, OPEN)])),
]


def short_type(t: str) -> str:
    """`tensor(float)` -> `float`; other types (sequences, optionals) stay as written."""
    m = re.fullmatch(r"tensor\((\w+)\)", t.strip())
    return m.group(1) if m else t.strip()


def norm_domain(d: str) -> str:
    return "" if d in ("", "ai.onnx") else d


def schemas_from_ort() -> dict:
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    option = {
        "FormalParameterOption.Single": "single",
        "FormalParameterOption.Optional": "optional",
        "FormalParameterOption.Variadic": "variadic",
    }
    out: dict[str, dict[str, list]] = {}
    for s in C.get_all_operator_schema():
        domain = norm_domain(s.domain)
        if domain not in DOMAINS:
            continue
        params = lambda ps: [[p.name, short_type(p.typeStr), option[str(p.option)]] for p in ps]  # noqa: E731
        out.setdefault(domain, {}).setdefault(s.name, []).append(
            {"since": s.since_version, "inputs": params(s.inputs), "outputs": params(s.outputs)}
        )
    for ops in out.values():
        for versions in ops.values():
            versions.sort(key=lambda v: v["since"])
    return {d: dict(sorted(ops.items())) for d, ops in sorted(out.items())}


def function_ops() -> list:
    import onnx.defs

    return sorted(
        [norm_domain(s.domain), s.name, s.since_version]
        for s in onnx.defs.get_all_schemas_with_history()
        if (s.has_function or s.has_context_dependent_function) and norm_domain(s.domain) in DOMAINS
    )


def kernel_rows(defs) -> list:
    rows = set()
    for d in defs:
        lo, hi = d["version_range"]
        hi = OPEN if hi >= 2**31 - 1 else hi
        types = tuple(sorted((k, tuple(sorted(short_type(t) for t in v))) for k, v in d["type_constraints"].items()))
        rows.add((norm_domain(d["domain"]), d["op_name"], lo, hi, types))
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], -1 if r[3] is None else r[3], r[4]))


def cpu_kernels_from_ort() -> list:
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    defs = [
        {"domain": k.domain, "op_name": k.op_name, "version_range": list(k.version_range),
         "type_constraints": dict(k.type_constraints)}
        for k in C.get_all_opkernel_def()
        if k.provider == "CPUExecutionProvider"
    ]
    return kernel_rows(defs)


def cuda_kernels_from_markdown(path: Path) -> list:
    """The CUDA section of OperatorKernels.md: `|Op|params|13+|**T** = tensor(float), ...|`."""
    rows, domain, op, active = [], None, None, False
    for line in path.read_text().split("\n"):
        if line.startswith("## Operators implemented by"):
            active = "CUDAExecutionProvider" in line
            continue
        if not active or not line.startswith("|"):
            continue
        m = re.match(r"\|\*\*Operator Domain:\*\* \*([^*]+)\*", line)
        if m:
            domain = norm_domain(m.group(1))
            continue
        cells = line.split("|")
        if len(cells) < 5 or cells[1].startswith("---") or cells[1].strip() == "Op Name":
            continue
        if cells[1]:
            op = cells[1]
        version = cells[3].strip()
        if version.endswith("+"):
            lo, hi = int(version[:-1]), OPEN
        elif version.startswith("["):
            a, b = version[1:-1].split(",")
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(version)
        types = {}
        for part in cells[4].split("<br/>"):
            m = re.match(r"\s*\*\*([^*]+)\*\* = (.*)", part)
            if m:
                types[m.group(1)] = [t for t in m.group(2).split(", ") if t.strip()]
        rows.append({"domain": domain, "op_name": op, "version_range": [lo, 2**31 - 1 if hi is None else hi],
                     "type_constraints": types})
    return apply_deltas(kernel_rows(rows))


def apply_deltas(rows: list) -> list:
    rows = list(rows)
    for pr, domain, op, (at, added) in CUDA_DELTAS:
        open_rows = [r for r in rows if r[0] == domain and r[1] == op and r[3] is None]
        if not open_rows:
            sys.exit(f"delta {pr}: no open registration of {op} to split")
        for r in open_rows:
            rows.remove(r)
            rows.append((r[0], r[1], r[2], at - 1, r[4]))
            for lo, hi in added:
                rows.append((r[0], r[1], lo, hi, r[4]))
    return sorted(set(rows), key=lambda r: (r[0], r[1], r[2], -1 if r[3] is None else r[3], r[4]))


def as_json_rows(rows: list) -> list:
    return [[d, op, lo, hi, {k: list(v) for k, v in types}] for d, op, lo, hi, types in rows]


def render(table: dict) -> str:
    """Compact JSON with one schema op and one kernel row per line, so diffs stay readable."""
    dump = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    lines = ["{", f'"onnxruntime":{dump(table["onnxruntime"])},', f'"sources":{dump(table["sources"])},', '"schemas":{']
    domains = list(table["schemas"].items())
    for di, (domain, ops) in enumerate(domains):
        lines.append(f"{dump(domain)}:{{")
        items = list(ops.items())
        for oi, (op, versions) in enumerate(items):
            lines.append(f"{dump(op)}:{dump(versions)}" + ("," if oi + 1 < len(items) else ""))
        lines.append("}" + ("," if di + 1 < len(domains) else ""))
    lines.append("},")
    lines.append(f'"functions":{dump(table["functions"])},')
    lines.append('"kernels":{')
    eps = list(table["kernels"].items())
    for ei, (ep, rows) in enumerate(eps):
        lines.append(f"{dump(ep)}:[")
        for ri, row in enumerate(rows):
            lines.append(dump(row) + ("," if ri + 1 < len(rows) else ""))
        lines.append("]" + ("," if ei + 1 < len(eps) else ""))
    lines.append("}")
    lines.append("}")
    return "\n".join(lines)


# --- the compiled-in schema table (crates/ort-kernels/src/schema/table.rs) -----------------------
# The fp16 pass matches type parameters with bit sets over TensorProto.DataType codes.

SCHEMA_TABLE = ROOT / "crates/ort-kernels/src/schema/table.rs"
FP16_DOMAINS = {"": "", "ai.onnx": "", "ai.onnx.ml": "ai.onnx.ml", "com.microsoft": "com.microsoft"}

# TensorProto.DataType codes.
CODES = {
    "float": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7, "string": 8,
    "bool": 9, "float16": 10, "double": 11, "uint32": 12, "uint64": 13, "complex64": 14,
    "complex128": 15, "bfloat16": 16, "float8e4m3fn": 17, "float8e4m3fnuz": 18, "float8e5m2": 19,
    "float8e5m2fnuz": 20, "uint4": 21, "int4": 22, "float4e2m1": 23, "float8e8m0": 24, "uint2": 25,
    "int2": 26, "float6e2m3": 27, "float6e3m2": 28,
}
# OperatorKernels.md spells some element types as onnxruntime's C++ types.
DOC_NAMES = {"mlfloat16": "float16", "bfloat16": "bfloat16", "float8e4m3fn": "float8e4m3fn",
             "float8e4m3fnuz": "float8e4m3fnuz", "float8e5m2": "float8e5m2",
             "float8e5m2fnuz": "float8e5m2fnuz", "float4e2m1": "float4e2m1", "float8e8m0": "float8e8m0",
             "float6e2m3": "float6e2m3", "float6e3m2": "float6e3m2"}


class TypeSet:
    """Tensor element types, sequence element types, and whether anything else is allowed."""

    def __init__(self) -> None:
        self.tensor = 0
        self.seq = 0
        self.other = False

    def add(self, text: str) -> None:
        text = text.strip().replace(" ", "")
        m = re.fullmatch(r"tensor\((\w+)\)", text)
        if m:
            self.tensor |= 1 << code(m.group(1))
            return
        m = re.fullmatch(r"seq\(tensor\((\w+)\)\)", text)
        if m:
            self.seq |= 1 << code(m.group(1))
            return
        self.other = True  # optional(...), map(...), seq(map(...)), sparse_tensor(...)

    def key(self) -> tuple[int, int, bool]:
        return (self.tensor, self.seq, self.other)


def code(name: str) -> int:
    name = DOC_NAMES.get(name.lower(), name.lower())
    if name not in CODES:
        raise SystemExit(f"gen_tables: unknown element type {name!r}")
    return CODES[name]


def type_set(strs) -> TypeSet:
    ts = TypeSet()
    for s in strs:
        ts.add(s)
    return ts


class Interner:
    def __init__(self) -> None:
        self.index: dict[tuple[int, int, bool], int] = {}

    def __call__(self, ts: TypeSet) -> str:
        return f"TS[{self.index.setdefault(ts.key(), len(self.index))}]"

    def rust(self) -> str:
        lines = ["/// Every distinct type set of the tables below.", f"pub(crate) static TS: [Types; {len(self.index)}] = ["]
        for (tensor, seq, other) in self.index:
            lines.append(f"    Types::new({tensor:#x}, {seq:#x}, {str(other).lower()}),")
        lines.append("];")
        return "\n".join(lines)


HEADER = "// @generated by tools/ort/gen_kernel_tables.py --schema-table from onnxruntime {version}; do not edit.\n"


def schema_table(ort) -> str:
    from onnxruntime.capi import onnxruntime_pybind11_state as st

    opt = st.schemadef.OpSchema.FormalParameterOption
    arity = {opt.Single: "One", opt.Optional: "Opt", opt.Variadic: "Many"}
    interner = Interner()
    rows = []
    for s in st.get_all_operator_schema():
        if s.domain not in FP16_DOMAINS or s.deprecated:
            continue
        names = [t.type_param_str for t in s.type_constraints]
        vars_ = ", ".join(f'("{t.type_param_str}", {interner(type_set(t.allowed_type_strs))})' for t in s.type_constraints)

        def param(p) -> str:
            kind = arity[p.option]
            if kind == "Many" and not p.isHomogeneous:
                kind = "ManyMixed"
            if p.typeStr in names:
                return f"p(Slot::Var({names.index(p.typeStr)}), {kind})"
            return f"p(Slot::Fixed({interner(type_set([p.typeStr]))}), {kind})"

        ins = ", ".join(param(p) for p in s.inputs)
        outs = ", ".join(param(p) for p in s.outputs)
        rows.append((FP16_DOMAINS[s.domain], s.name, s.since_version,
                     f'    Schema {{ domain: "{FP16_DOMAINS[s.domain]}", op: "{s.name}", since: {s.since_version}, '
                     f"vars: &[{vars_}], inputs: &[{ins}], outputs: &[{outs}] }},"))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    body = "\n".join(r[3] for r in rows)
    return (HEADER.format(version=ort.__version__)
            + "//! Operator schemas: type parameters and formal inputs/outputs, sorted by (domain, op, since).\n\n"
            + "use super::{Arity::*, Schema, Slot, Types, p};\n\n"
            + interner.rust() + "\n\n"
            + f"pub(crate) static SCHEMAS: [Schema; {len(rows)}] = [\n{body}\n];\n")



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--cuda-kernel-defs", type=Path, help="JSON from measure_memcpy.py --dump-kernels")
    src.add_argument("--cuda-operator-kernels", type=Path, help="ORT docs/OperatorKernels.md of a source snapshot")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--schema-table", action="store_true",
                    help="also rewrite crates/ort-kernels/src/schema/table.rs from the same wheel")
    args = ap.parse_args()

    import onnxruntime

    version = onnxruntime.__version__
    if args.cuda_kernel_defs:
        dumped = json.loads(args.cuda_kernel_defs.read_text())
        if dumped.get("onnxruntime") != version:
            sys.exit(f"the kernel dump is of onnxruntime {dumped.get('onnxruntime')}, this is {version}")
        cuda = kernel_rows(dumped["kernels"]["CUDAExecutionProvider"])
        cuda_source = f"onnxruntime-gpu {version}: get_all_opkernel_def() on a GPU machine (exact)"
    else:
        cuda = cuda_kernels_from_markdown(args.cuda_operator_kernels)
        cuda_source = (
            "onnxruntime main 735e69a39 (2026-02-13) docs/OperatorKernels.md, plus "
            + ", ".join(sorted({d[0] for d in CUDA_DELTAS}))
            + f"; not yet checked against the onnxruntime-gpu {version} binary"
        )
    table = {
        "onnxruntime": version,
        "sources": {
            "schemas": f"onnxruntime {version} wheel: get_all_operator_schema()",
            "functions": f"onnx {__import__('onnx').__version__}: schemas with a function body",
            "CPUExecutionProvider": f"onnxruntime {version} wheel: get_all_opkernel_def() (exact)",
            "CUDAExecutionProvider": cuda_source,
        },
        "schemas": schemas_from_ort(),
        "functions": function_ops(),
        "kernels": {
            "CPUExecutionProvider": as_json_rows(cpu_kernels_from_ort()),
            "CUDAExecutionProvider": as_json_rows(cuda),
        },
    }
    out = args.out or ROOT / f"crates/ort-kernels/src/ort-{version}.json"
    text = render(table)
    out.write_text(text + "\n")
    print(f"{out}: {sum(len(v) for v in table['schemas'].values())} ops with schemas, "
          f"{len(table['kernels']['CPUExecutionProvider'])} CPU and {len(cuda)} CUDA registrations")
    if args.schema_table:
        SCHEMA_TABLE.write_text(schema_table(onnxruntime))
        print(f"{SCHEMA_TABLE}: rewritten")


if __name__ == "__main__":
    main()
