#!/usr/bin/env python3
"""Compare what two builds of onnx-rewrite write, after canonicalisation.

Why: a refactor of the graph-editing code must keep behaviour. Comparing the files
the build from before and the build from after write (same models, same pass lists)
byte for byte is too strict: value names, node names and node order may change.
This script rewrites both outputs into a canonical text form in which names and
order do not matter and reports every (model, pass list) whose exit codes or
canonical forms differ. Each difference must then be explained (an intended
change) or fixed.

Canonical form (``canonical(model) -> str``; README.md has the details): graph
inputs and outputs keep their names (the interface); initializers are named
``c<sha256 of dtype, dims, values>``; every other value is ``v<k>`` in the order a
deterministic topological sort first defines it. The sort is Kahn's algorithm that
always takes the ready node with the smallest key (domain, op_type, attributes,
canonical input names, output pattern), so it depends on neither the node order
nor the names. Nodes with equal keys compute the same value: they are shown once,
with a count. Subgraphs are canonicalised recursively (``g<depth>.in<i>``,
``g<depth>.v<k>``; captured outer values through the outer mapping), and so are
function bodies.

Exit status: 0 no difference, 1 at least one difference or error, 2 bad usage.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import hashlib
import heapq
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, numpy_helper

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PASSES = ["none", "egraph", "gemm-to-matmul", "inline-functions", "lower-if", "fp16",
                  "fp16 --fp16-type bfloat16", "moe-dense", "hoist-scalars", "all"]
DEFAULT_MODELS = REPO_ROOT / "testdata" / "models"
DEFAULT_CORPUS = REPO_ROOT / "target" / "corpus"
# --self-test without --filter: every model in --models and these corpus cases (subgraphs, functions)
SELF_TEST_CORPUS = {"test_if", "test_if_seq", "test_loop11", "test_loop16_seq_none", "test_scan9_sum",
                    "test_gemm_all_attributes", "test_affine_grid_2d_expanded", "test_dropout_default_mask",
                    "test_layer_normalization_2d_axis0_expanded", "test_split_variable_parts_1d_opset18",
                    "test_range_float_type_positive_delta_expanded"}
SELF_TEST_SEEDS = 5
TIMEOUT_S = 120
DIFF_SHOWN, DIFF_KEPT = 20, 2000  # diff lines printed per case / kept per case in --json


# --------------------------------------------------------------------------- canonical form


def _dtype(code: int) -> str:
    return TensorProto.DataType.Name(code).lower() if code else "?"


def _type(tp: TypeProto) -> str:
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(tp, kind)
        pre = "sparse " if kind == "sparse_tensor_type" else ""
        if not tt.HasField("shape"):
            return pre + _dtype(tt.elem_type)
        dims = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
        return f"{pre}{_dtype(tt.elem_type)}[{','.join(dims)}]"
    if kind in ("sequence_type", "optional_type"):
        return f"{kind[:-5]}({_type(getattr(tp, kind).elem_type)})"
    if kind == "map_type":
        return f"map({_dtype(tp.map_type.key_type)},{_type(tp.map_type.value_type)})"
    return "?"


def tensor_sig(t: TensorProto) -> tuple[str, str]:
    """(``dtype[dims]``, 16 hex digits of sha256 over dtype, dims and the values)."""
    h = hashlib.sha256(f"{t.data_type}:{list(t.dims)}:".encode())
    try:
        arr = numpy_helper.to_array(t)
        if t.data_type == TensorProto.STRING:
            for s in arr.flat:
                b = s if isinstance(s, bytes) else str(s).encode()
                h.update(len(b).to_bytes(8, "little") + b)
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
    except Exception:  # external data that is not there, odd encodings: hash the proto
        c = TensorProto.FromString(t.SerializeToString())
        c.name, c.doc_string = "", ""
        h.update(b"proto:" + c.SerializeToString(deterministic=True))
    return f"{_dtype(t.data_type)}[{','.join(map(str, t.dims))}]", h.hexdigest()[:16]


def subgraphs(n: NodeProto) -> list[GraphProto]:
    return [g for a in n.attribute for g in ([a.g] if a.type == AttributeProto.GRAPH else a.graphs)]


def captures(n: NodeProto) -> set[str]:
    """Outer names a node's subgraphs read (implicit inputs: they order the node too)."""
    return set().union(*(free_vars(g) for g in subgraphs(n)))


def free_vars(g: GraphProto) -> set[str]:
    defined = {x.name for x in g.input} | {t.name for t in g.initializer}
    defined |= {t.values.name for t in g.sparse_initializer}
    used = {o.name for o in g.output}
    for n in g.node:
        defined.update(n.output)
        used |= {*n.input, *captures(n)}
    return used - defined - {""}


def _block(lines: list[str]) -> str:
    return "{\n" + "\n".join("    " + ln.replace("\n", "\n    ") for ln in lines) + "\n}"


class Canon:
    """Renders a model in the canonical text form."""

    def __init__(self, value_info: bool = True) -> None:
        self.value_info = value_info

    def attr(self, a: AttributeProto, m: dict[str, str], depth: int) -> str:
        T, v = AttributeProto, ""
        if a.ref_attr_name:
            return f"{a.name}=@{a.ref_attr_name}"
        if a.type == T.FLOAT: v = repr(a.f)
        elif a.type == T.INT: v = str(a.i)
        elif a.type == T.STRING: v = repr(a.s)
        elif a.type == T.FLOATS: v = "[" + ",".join(map(repr, a.floats)) + "]"
        elif a.type == T.INTS: v = "[" + ",".join(map(str, a.ints)) + "]"
        elif a.type == T.STRINGS: v = repr(list(a.strings))
        elif a.type == T.TENSOR: v = "{}#{}".format(*tensor_sig(a.t))
        elif a.type == T.TENSORS: v = "[" + ",".join("{}#{}".format(*tensor_sig(t)) for t in a.tensors) + "]"
        elif a.type == T.TYPE_PROTO: v = _type(a.tp)
        elif a.type == T.TYPE_PROTOS: v = "[" + ",".join(_type(t) for t in a.type_protos) + "]"
        elif a.type == T.GRAPH: v = _block(self.graph(a.g, m, depth + 1))
        elif a.type == T.GRAPHS: v = "[" + ",".join(_block(self.graph(g, m, depth + 1)) for g in a.graphs) + "]"
        else:  # sparse tensors and anything newer: a hash of the proto
            v = hashlib.sha256(a.SerializeToString(deterministic=True)).hexdigest()[:16]
        return f"{a.name}={v}"

    def rhs(self, n: NodeProto, m: dict[str, str], depth: int) -> str:
        dom = "" if n.domain in ("", "ai.onnx") else n.domain + "."
        attrs = sorted(self.attr(a, m, depth) for a in n.attribute)
        ins = ", ".join(m.get(x, "?" + x) if x else "" for x in n.input)
        return f"{dom}{n.op_type}{':' + n.overload if n.overload else ''}{'<%s>' % ', '.join(attrs) if attrs else ''}({ins})"

    def body(self, nodes: list[NodeProto], m: dict[str, str], depth: int, keep: set[str]) -> list[str]:
        """Node lines in canonical order; adds the names of their outputs to ``m``."""
        pre = f"g{depth}." if depth else ""
        producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
        consumers: list[list[int]] = [[] for _ in nodes]
        indeg = [0] * len(nodes)
        for i, n in enumerate(nodes):
            for j in {producer[x] for x in [*n.input, *captures(n)] if x in producer} - {i}:
                consumers[j].append(i)
                indeg[i] += 1

        def key(i: int) -> str:  # computed once, when the node is ready: its inputs have their names
            outs = ",".join(o if o in keep else "*" if o else "" for o in nodes[i].output)
            return f"{self.rhs(nodes[i], m, depth)} -> {outs}"

        heap = [(key(i), i) for i in range(len(nodes)) if indeg[i] == 0]
        heapq.heapify(heap)
        emitted: dict[str, list[Any]] = {}  # key -> [output names, rhs, count]
        done = fresh = 0
        while heap:
            k, i = heapq.heappop(heap)
            group = [i]  # every ready node with this key, so that which one comes first cannot matter
            while heap and heap[0][0] == k:
                group.append(heapq.heappop(heap)[1])
            if k not in emitted:
                outs = []
                for o in nodes[i].output:
                    if o and o not in keep:
                        m[o], fresh = f"{pre}v{fresh}", fresh + 1
                    outs.append(m.setdefault(o, o) if o else "")
                emitted[k] = [outs, k.rsplit(" -> ", 1)[0], 0]
            row = emitted[k]  # a computation seen before: the same value, the same names
            for j in group:
                row[2] += 1
                m.update((o, name) for o, name in zip(nodes[j].output, row[0]) if o)
                for c in consumers[j]:
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        heapq.heappush(heap, (key(c), c))
            done += len(group)
        if done != len(nodes):
            raise ValueError(f"graph has a cycle ({len(nodes) - done} nodes never ready)")
        return [f"{', '.join(o)} = {r}" + (f"   # x{c}" if c > 1 else "") for o, r, c in emitted.values()]

    def graph(self, g: GraphProto, scope: dict[str, str], depth: int) -> list[str]:
        m, lines = dict(scope), []
        for i, x in enumerate(g.input):
            m[x.name] = f"g{depth}.in{i}" if depth else x.name
            lines.append(f"input {m[x.name]}: {_type(x.type)}")
        keep = {o.name for o in g.output} if depth == 0 else set()
        inits: dict[str, list[Any]] = {}  # name -> [signature, hash, copies]
        tensors = [(t.name, "c", t, *tensor_sig(t)) for t in g.initializer]
        for s in g.sparse_initializer:
            sig, h = tensor_sig(s.values)
            h = hashlib.sha256(f"{h}{tensor_sig(s.indices)[1]}{list(s.dims)}".encode()).hexdigest()[:16]
            tensors.append((s.values.name, "s", s, f"sparse {sig} dims={list(s.dims)}", h))
        for name, prefix, _, sig, h in tensors:
            m[name] = m.get(name) or (name if name in keep else prefix + h)
            inits.setdefault(m[name], [sig, h, 0])[2] += 1
        for name, (sig, h, cnt) in sorted(inits.items()):
            lines.append(f"init {name}: {sig}" + (f" #{h}" if name[1:] != h else "") + (f" x{cnt}" if cnt > 1 else ""))
        lines += self.body(list(g.node), m, depth, keep)
        lines += [f"output {m.get(o.name, '?' + o.name)}: {_type(o.type)}" for o in g.output]
        if self.value_info:
            lines += sorted({f"value_info {m[v.name]}: {_type(v.type)}" for v in g.value_info if v.name in m})
        return lines


def canonical(model: ModelProto, value_info: bool = True) -> str:
    """The canonical text form of a model (see the module docstring)."""
    c = Canon(value_info)
    lines = [f"ir_version {model.ir_version}"]
    lines += sorted(f"opset {o.domain or '(default)'} {o.version}" for o in model.opset_import)
    lines += [f"producer {model.producer_name!r} {model.producer_version!r}", f"model_version {model.model_version}"]
    lines += sorted(f"metadata {p.key!r}={p.value!r}" for p in model.metadata_props)
    lines += ["graph " + _block(c.graph(model.graph, {}, 0))]
    for f in sorted(model.functions, key=lambda f: (f.domain, f.name, f.overload)):
        m = {x: x for x in f.input}
        attrs = sorted([*f.attribute, *(c.attr(a, m, 0) for a in f.attribute_proto)])
        opsets = sorted(f"{o.domain or '(default)'}:{o.version}" for o in f.opset_import)
        lines.append(f"function {f.domain}.{f.name}{':' + f.overload if f.overload else ''}({', '.join(f.input)}) -> "
                     f"({', '.join(f.output)}) attrs {attrs} opsets {opsets} "
                     + _block(c.body(list(f.node), m, 0, set(f.output))))
    return "\n".join(lines) + "\n"


def load(path: Path) -> ModelProto:
    try:
        return onnx.load(str(path), load_external_data=True)
    except Exception:  # external data missing or unreadable: such tensors then hash their proto
        return onnx.load(str(path), load_external_data=False)


# --------------------------------------------------------------------------- running the tools


def run_case(job: tuple[str, str, str, str, str, bool]) -> dict[str, Any]:
    """(before, after, model path, label, pass spec, value_info) -> one result."""
    before, after, model, label, spec, value_info = job
    r: dict[str, Any] = {"model": label, "passes": spec, "status": "identical"}
    words = shlex.split(spec)
    try:
        with tempfile.TemporaryDirectory(prefix="canonical-diff-") as td:
            out = {side: Path(td, side, "model.onnx") for side in ("before", "after")}
            for side, tool in (("before", before), ("after", after)):
                out[side].parent.mkdir()
                cmd = [tool, "apply", model, "-o", str(out[side]), "--passes", words[0], "-q", *words[1:]]
                try:
                    p = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S)
                    r[f"rc_{side}"], r[f"stderr_{side}"] = p.returncode, p.stderr.decode(errors="replace")[-2000:]
                except subprocess.TimeoutExpired:
                    r[f"rc_{side}"] = "timeout"
            if r["rc_before"] != r["rc_after"]:
                r["status"] = "exit-code"
            elif r["rc_before"] == 0:
                r["same_bytes"] = out["before"].read_bytes() == out["after"].read_bytes()
                if not r["same_bytes"]:
                    texts = []
                    for side in ("before", "after"):
                        try:
                            texts.append(canonical(load(out[side]), value_info))
                        except Exception as e:
                            raise RuntimeError(f"{side} output: {type(e).__name__}: {e}") from e
                    if texts[0] != texts[1]:
                        r["status"] = "canonical"
                        r["diff"] = list(difflib.unified_diff(texts[0].splitlines(), texts[1].splitlines(),
                                                              "before", "after", lineterm="", n=2))[:DIFF_KEPT]
    except Exception as e:
        r["status"], r["error"] = "error", f"{e}\n{traceback.format_exc(limit=3)}"
    return r


def discover(dirs: list[Path], rx: re.Pattern[str] | None) -> list[tuple[str, str]]:
    """(label ``<set>/<model>``, path) of every ``DIR/*/model.onnx`` the filter keeps."""
    found = [(f"{d.name}/{p.parent.name}", str(p)) for d in dirs for p in sorted(d.glob("*/model.onnx"))]
    return [(lb, p) for lb, p in found if rx is None or rx.search(lb)]


# --------------------------------------------------------------------------- self-test


def _refill(field: Any, items: list[Any]) -> None:
    items = [type(x).FromString(x.SerializeToString()) for x in items]
    del field[:]
    field.extend(items)


def scramble(model: ModelProto, rng: random.Random) -> ModelProto:
    """The same model under other names: every non-interface value and node renamed, nodes
    in another valid topological order, initializers and attributes shuffled."""
    m = ModelProto.FromString(model.SerializeToString())
    keep = {x.name for x in m.graph.input} | {x.name for x in m.graph.output}
    names: dict[str, str] = {}

    def fresh(n: str) -> str:
        return n if not n or n in keep else names.setdefault(n, f"r{rng.getrandbits(48):012x}")

    def walk(g: GraphProto, top: bool) -> None:
        for vi in [*([] if top else [*g.input, *g.output]), *g.value_info]:
            vi.name = fresh(vi.name)
        for t in g.initializer:
            t.name = fresh(t.name)
        for n in g.node:
            n.name = f"n{rng.getrandbits(32):x}"
            for field in (n.input, n.output):
                field[:] = [fresh(x) for x in field]
            for sub in subgraphs(n):
                walk(sub, False)
            _refill(n.attribute, rng.sample(list(n.attribute), len(n.attribute)))
        _refill(g.initializer, rng.sample(list(g.initializer), len(g.initializer)))
        nodes = list(g.node)  # Kahn's algorithm, picking at random among the ready nodes
        producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
        deps = [{producer[x] for x in [*n.input, *captures(n)] if x in producer} - {i} for i, n in enumerate(nodes)]
        order: dict[int, None] = {}
        while len(order) < len(nodes):
            order[rng.choice([i for i in range(len(nodes)) if i not in order and deps[i] <= order.keys()])] = None
        _refill(g.node, [nodes[i] for i in order])

    walk(m.graph, True)
    return m


def mutate(model: ModelProto, what: str) -> ModelProto | None:
    """One value of the first numeric initializer or Constant changed, or the first
    int/float/ints/string attribute; subgraphs included; None when there is none."""
    m = ModelProto.FromString(model.SerializeToString())
    nodes, k = list(m.graph.node), 0
    while k < len(nodes):
        nodes += [x for g in subgraphs(nodes[k]) for x in g.node]
        k += 1
    if what == "initializer":
        consts = [a.t for n in nodes if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
        for t in [*m.graph.initializer, *consts]:
            try:
                arr = numpy_helper.to_array(t).copy()
            except Exception:
                continue
            if arr.size and arr.dtype.kind in "biuf" and arr.dtype.type.__module__ == "numpy":
                x = arr.reshape(-1)
                x[0] = (not x[0]) if arr.dtype.kind == "b" else (x[0] + 1 if np.isfinite(x[0]) else 0)
                t.CopyFrom(numpy_helper.from_array(arr, t.name))
                return m
        return None
    for n in nodes:
        for a in n.attribute:
            if a.type in (AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING) or a.ints:
                if a.type == AttributeProto.INT: a.i += 1
                elif a.type == AttributeProto.FLOAT: a.f += 1.0
                elif a.type == AttributeProto.STRING: a.s += b"x"
                else: a.ints[0] += 1
                return m
    return None


def _valid(model: ModelProto) -> bool:
    try:
        onnx.checker.check_model(model)
        return True
    except Exception:
        return False


def self_test(dirs: list[Path], corpus: Path | None, rx: re.Pattern[str] | None) -> int:
    """canonical() must not change under renaming and reordering, and must change under an edit."""
    cases = [(lb, p) for lb, p in discover(dirs, rx)
             if rx or Path(p).parents[1] != corpus or Path(p).parent.name in SELF_TEST_CORPUS]
    failures = 0
    for label, path in cases:
        notes: list[str] = []
        try:
            model = load(Path(path))
            base = canonical(model)
            checkable = _valid(model)
            for seed in range(SELF_TEST_SEEDS):
                s = scramble(model, random.Random(seed))
                if checkable and not _valid(s):  # the scrambler itself must keep the model valid
                    raise AssertionError(f"scrambled model (seed {seed}) fails onnx.checker")
                if (text := canonical(s)) != base:
                    failures += 1
                    notes.append(f"NOT INVARIANT (seed {seed}):\n" + "\n".join(list(difflib.unified_diff(
                        base.splitlines(), text.splitlines(), "original", "scrambled", lineterm="", n=1))[:DIFF_SHOWN]))
            notes += [] if notes else [f"same text after {SELF_TEST_SEEDS} scrambles"]
            for what in ("initializer", "attribute"):
                if (mut := mutate(model, what)) is None:
                    notes.append(f"no {what} to change")
                elif canonical(mut) == base:
                    failures += 1
                    notes.append(f"{what} change NOT SEEN")
                else:
                    notes.append(f"{what} change seen")
        except Exception as e:
            failures += 1
            notes.append(f"ERROR {type(e).__name__}: {e}")
        print(f"{label}: " + "; ".join(notes))
    print(f"self-test: {len(cases)} models, {failures} failures")
    return 1 if failures or not cases else 0


# --------------------------------------------------------------------------- main


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regex: {e}") from e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="the baseline onnx-rewrite binary")
    ap.add_argument("--after", help="the onnx-rewrite binary under test")
    ap.add_argument("--passes", action="append", help="a pass list, then optionally extra apply flags "
                    f"('fp16 --fp16-type bfloat16'); repeatable (default: {', '.join(DEFAULT_PASSES)})")
    ap.add_argument("--models", action="append", type=Path, help=f"a folder of */model.onnx; repeatable "
                    f"(default {DEFAULT_MODELS.relative_to(REPO_ROOT)})")
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="the node-test corpus (default "
                    f"{DEFAULT_CORPUS.relative_to(REPO_ROOT)}); '' for none")
    ap.add_argument("--filter", type=_regex, help="regex searched in the '<set>/<model>' labels")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    ap.add_argument("--json", type=Path, help="write every result, diffs included")
    ap.add_argument("--no-value-info", action="store_true", help="leave value_info out of the canonical form")
    ap.add_argument("--show", type=int, default=5, help="diffs printed per pass list (default 5)")
    ap.add_argument("--self-test", action="store_true", help="check canonical() on the models instead")
    args = ap.parse_args()
    corpus = Path(args.corpus) if args.corpus else None
    dirs = [*(args.models or [DEFAULT_MODELS]), *([corpus] if corpus else [])]
    if missing := [str(d) for d in dirs if not d.is_dir()]:
        ap.error(f"no such directory: {', '.join(missing)}")
    if args.self_test:
        return self_test(dirs, corpus, args.filter)
    if not args.before or not args.after:
        ap.error("--before and --after are required (unless --self-test)")
    if bad := [t for t in (args.before, args.after) if not os.access(t, os.X_OK)]:
        ap.error(f"not an executable: {', '.join(bad)}")
    specs = args.passes or DEFAULT_PASSES
    if any(not shlex.split(s) for s in specs):
        ap.error("empty --passes value")
    if not (models := discover(dirs, args.filter)):
        ap.error("no model matches")
    jobs = [(args.before, args.after, p, lb, s, not args.no_value_info) for s in specs for lb, p in models]
    results: list[dict[str, Any]] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for k, r in enumerate(ex.map(run_case, jobs, chunksize=4), 1):
            results.append(r)
            if k % 500 == 0:
                print(f"... {k}/{len(jobs)}", file=sys.stderr)
    summary: dict[str, dict[str, Any]] = {}
    for s in specs:
        rs = [r for r in results if r["passes"] == s]
        diff = [r for r in rs if r["status"] != "identical"]
        n = {k: sum(r["status"] == k for r in rs) for k in ("identical", "exit-code", "canonical", "error")}
        n["byte-identical"] = sum(bool(r.get("same_bytes")) for r in rs)
        n["same-failure"] = sum(r["status"] == "identical" and r["rc_before"] != 0 for r in rs)
        summary[s] = {"compared": len(rs), **n, "different": [r["model"] for r in diff]}
        print(f"{s!r:29} {len(rs)} compared, {n['identical']} identical ({n['byte-identical']} byte-identical, "
              f"{n['same-failure']} same failure exit), "
              f"{len(diff)} different ({n['exit-code']} exit code, {n['canonical']} canonical, {n['error']} error)")
        for i, r in enumerate(diff):
            why = (f"exit {r['rc_before']} -> {r['rc_after']}" if r["status"] == "exit-code" else
                   "canonical form" if r["status"] == "canonical" else "error: " + r["error"].split("\n")[0])
            print(f"    {r['model']}: {why}")
            if i < args.show and r["status"] == "canonical":
                print("\n".join("        " + ln for ln in r["diff"][:DIFF_SHOWN]))
    if args.json:
        args.json.write_text(json.dumps({"before": args.before, "after": args.after, "passes": specs,
                                         "summary": summary, "results": results}, indent=1))
    return 1 if any(r["status"] != "identical" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
