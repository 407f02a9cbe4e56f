#!/usr/bin/env python3
"""Build the ModernBERT-large-size benchmark models (random weights, no downloads).

A `ModernBertModel` with the configuration of answerdotai/ModernBERT-large (28 layers, hidden 1024,
intermediate 2624, 16 heads, vocab 50368; every field set explicitly below) is built from a config
with fixed seeds and exported to ONNX twice, by both torch exporters, into

    <out-root>/modernbert-large-dynamo/   torch.onnx.export(dynamo=True)
    <out-root>/modernbert-large-legacy/   torch.onnx.export(dynamo=False)

each holding
    model.onnx            the graph; every initializer over 256 bytes lives in model.onnx.data
    model.onnx.data       the weights (about 1.6 GB)
    export_info.json      how it was made: versions, config, time, peak RSS, sha256 of both files
    check_b1_s16.npz      one PyTorch reference run (batch 1 x seq 16) used by the onnxruntime check

Inputs `input_ids`, `attention_mask` (int64, [batch, seq], both dynamic), output `last_hidden_state`
(float32, [batch, seq, 1024]); opset 20. A folder that already holds model.onnx, model.onnx.data and
export_info.json is kept as it is (use --force to rebuild it).

Each export runs in its own child process (so its memory is given back before the next one starts and
its peak RSS can be measured alone); after it, a second child loads the model in onnxruntime (CPU),
runs the stored batch 1 x seq 16 input and compares it with PyTorch's output. The script ends with a
Markdown summary (sizes, node counts, op histograms, timings, peak RSS).

Usage (the venv of testdata/models/requirements.txt):

    /tmp/models-venv/bin/python tools/bench/make_modernbert_large.py                  # both exports
    /tmp/models-venv/bin/python tools/bench/make_modernbert_large.py --out-root /data/bench legacy
    /tmp/models-venv/bin/python tools/bench/make_modernbert_large.py --smoke          # tiny config, seconds

Like testdata/models/make_models.py, the per-node stack traces that the dynamo exporter writes
(`pkg.torch.onnx.stack_trace`) are dropped and machine-specific path prefixes in the remaining strings
are rewritten, so the files do not depend on where the script ran.
"""

from __future__ import annotations

import os
import sys

# String hashing must be fixed for the exports to be reproducible: transformers iterates over a set
# of layer-type names (ModernBERT's rotary embeddings), so the node order follows hash(str).
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import collections
import gc
import hashlib
import json
import resource
import shutil
import site
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_OUT_ROOT = REPO_ROOT / "target" / "bench"

VARIANTS = ("dynamo", "legacy")
OPSET = 20
SEED = 1201  # weights
TRACE_SEED = 1202  # example inputs given to the exporters
CHECK_SEED = 1203  # the batch 1 x seq 16 check input
INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAMES = ["last_hidden_state"]
FILES = ("model.onnx", "model.onnx.data", "export_info.json", "check_b1_s16.npz")

PINNED = {"torch": "2.15.0", "transformers": "5.23.0", "onnx": "1.23.2", "onnxscript": "0.7.2", "onnxruntime": "1.32.0"}

# answerdotai/ModernBERT-large's config.json, field by field (transformers 5.23 ModernBertConfig
# defaults are the base model's: 22 layers, hidden 768, intermediate 1152, 12 heads). Every field is
# written out so that a change of defaults in transformers does not change the model silently.
LARGE_CONFIG = dict(
    vocab_size=50368,
    hidden_size=1024,
    intermediate_size=2624,
    num_hidden_layers=28,
    num_attention_heads=16,
    hidden_activation="gelu",
    max_position_embeddings=8192,
    initializer_range=0.02,
    initializer_cutoff_factor=2.0,
    norm_eps=1e-5,
    norm_bias=False,
    pad_token_id=50283,
    eos_token_id=50282,
    bos_token_id=50281,
    cls_token_id=50281,
    sep_token_id=50282,
    attention_bias=False,
    attention_dropout=0.0,
    # global attention every 3rd layer (global_attn_every_n_layers=3), starting with layer 0
    layer_types=["sliding_attention" if i % 3 else "full_attention" for i in range(28)],
    rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    },
    local_attention=128,
    embedding_dropout=0.0,
    mlp_bias=False,
    mlp_dropout=0.0,
    decoder_bias=True,
    classifier_pooling="mean",
    classifier_dropout=0.0,
    classifier_bias=False,
    classifier_activation="gelu",
    deterministic_flash_attn=False,
    sparse_prediction=False,
    sparse_pred_ignore_index=-100,
    tie_word_embeddings=True,
)

# --smoke: the same code path on a config small enough to run in seconds.
SMOKE_CONFIG = dict(
    LARGE_CONFIG,
    vocab_size=512,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    layer_types=["sliding_attention" if i % 3 else "full_attention" for i in range(4)],
    local_attention=16,
    pad_token_id=0,
    eos_token_id=2,
    bos_token_id=1,
    cls_token_id=1,
    sep_token_id=2,
)


# --------------------------------------------------------------------------------------------
# Small helpers (path normalization and metadata stripping as in testdata/models/make_models.py)
# --------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def current_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for p in ["torch", "transformers", "onnx", "onnxscript", "onnx-ir", "onnxruntime", "numpy"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "absent"
    return out


def _path_prefixes() -> list[tuple[str, str]]:
    """Machine-specific path prefixes that exporters write into strings, mapped to stable text."""
    pairs = []
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        pairs.append((str(Path(sp)) + "/", "<site-packages>/"))
    pairs.append((str(REPO_ROOT) + "/", ""))
    pairs.append((str(Path(sys.prefix)) + "/", "<prefix>/"))
    pairs.append((tempfile.gettempdir() + "/", "<tmp>/"))
    seen, out = set(), []
    for a, b in sorted(pairs, key=lambda p: -len(p[0])):
        if a not in seen:
            seen.add(a)
            out.append((a, b))
    return out


DROPPED_NODE_METADATA = ("pkg.torch.onnx.stack_trace",)


def normalize_model(m) -> None:
    """Drop the per-node stack traces and rewrite machine-specific path prefixes, in place. Works
    on a ModelProto loaded without its external data (the graph alone is a few MB)."""
    import onnx

    prefixes = _path_prefixes()

    def text(s: str) -> str:
        for a, b in prefixes:
            s = s.replace(a, b)
        return s

    def clean_node(n) -> None:
        n.doc_string = text(n.doc_string)
        keep = [(p.key, text(p.value)) for p in n.metadata_props if p.key not in DROPPED_NODE_METADATA]
        del n.metadata_props[:]
        for k, v in keep:
            n.metadata_props.add(key=k, value=v)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                graph(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    graph(sg)

    def graph(g) -> None:
        g.doc_string = text(g.doc_string)
        for n in g.node:
            clean_node(n)
        for p in g.metadata_props:
            p.value = text(p.value)

    m.doc_string = text(m.doc_string)
    for p in m.metadata_props:
        p.value = text(p.value)
    graph(m.graph)
    for f in m.functions:
        for n in f.node:
            clean_node(n)


def normalize_file(path: Path) -> None:
    """Normalize model.onnx in place without touching its external data file."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    normalize_model(m)
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save_model(m, str(tmp))  # external tensors keep their location/offset/length entries
    os.replace(tmp, path)


def op_histogram(g, hist=None) -> collections.Counter:
    """Node counts over the graph and every subgraph; ops outside the default domain as domain::op."""
    import onnx

    hist = collections.Counter() if hist is None else hist
    for n in g.node:
        key = f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
        hist[key] += 1
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                op_histogram(a.g, hist)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    op_histogram(sg, hist)
    return hist


# --------------------------------------------------------------------------------------------
# Child 1: build the model and export it (one exporter per process)
# --------------------------------------------------------------------------------------------


def build_model(cfg_kwargs: dict):
    import torch
    from transformers import ModernBertConfig, ModernBertModel

    torch.manual_seed(SEED)
    cfg = ModernBertConfig(**cfg_kwargs)
    model = ModernBertModel(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return Wrapper(model).eval(), cfg


def example_inputs(gen, vocab: int, batch: int, seq: int, valid: list[int]):
    import torch

    # Ids above the special tokens of the large vocab (50281..50283 are CLS/SEP/PAD) are avoided by
    # drawing from [3, min(vocab, 50280)).
    ids = torch.randint(3, min(vocab, 50280), (batch, seq), generator=gen)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(valid):
        mask[b, :n] = 1
    return ids, mask


def child_export(variant: str, out_dir: Path, smoke: bool) -> int:
    """Export one variant into out_dir (which the parent created empty). Writes export_info.json last."""
    t_start = time.perf_counter()
    import numpy as np
    import torch
    import transformers

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    cfg_kwargs = SMOKE_CONFIG if smoke else LARGE_CONFIG
    stages: dict[str, dict] = {}

    def stage(name: str, t0: float) -> None:
        stages[name] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "rss_mib_after": round(current_rss_mib(), 1),
            "peak_rss_mib_so_far": round(peak_rss_mib(), 1),
        }
        print(f"   [{variant}] {name}: {stages[name]['seconds']} s, RSS {stages[name]['rss_mib_after']:.0f} MiB, "
              f"peak {stages[name]['peak_rss_mib_so_far']:.0f} MiB", flush=True)

    t0 = time.perf_counter()
    w, cfg = build_model(cfg_kwargs)
    n_params = sum(p.numel() for p in w.parameters())
    attn_impl = cfg._attn_implementation
    stage("build model (random init)", t0)

    # Reference output for the onnxruntime check: batch 1 x seq 16, no padding.
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(CHECK_SEED)
    c_ids, c_mask = example_inputs(gen, cfg.vocab_size, 1, 16, [16])
    with torch.no_grad():
        c_ref = w(c_ids, c_mask)
    np.savez(out_dir / "check_b1_s16.npz", input_ids=c_ids.numpy(), attention_mask=c_mask.numpy(),
             last_hidden_state=c_ref.numpy())
    stage("pytorch reference run (1 x 16)", t0)

    # Example inputs for the exporters: batch 2, seq 7, second row padded, so that neither dim is
    # 0/1-specialized and neither equals the check input's shape.
    gen = torch.Generator().manual_seed(TRACE_SEED)
    ids, mask = example_inputs(gen, cfg.vocab_size, 2, 7, [7, 5])
    model_path = out_dir / "model.onnx"

    if variant == "dynamo":
        t0 = time.perf_counter()
        B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
        prog = torch.onnx.export(
            w,
            (ids, mask),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_shapes={"input_ids": {0: B, 1: S}, "attention_mask": {0: B, 1: S}},
            opset_version=OPSET,
            dynamo=True,
            external_data=True,
            optimize=True,
        )
        stage("torch.onnx.export(dynamo=True)", t0)
        t0 = time.perf_counter()
        # Streams every initializer into model.onnx.data (onnx_ir), never builds an inline proto.
        prog.save(str(model_path), external_data=True)
        del prog
        stage("ONNXProgram.save(external_data=True)", t0)
        del w
        gc.collect()
    else:
        import onnx_ir as ir

        t0 = time.perf_counter()
        # The TorchScript exporter switches to external data only above 2 GB, so this ~1.6 GB model
        # is written inline to a scratch file first, then re-saved with external data below.
        inline = out_dir / "inline.onnx.tmp"
        torch.onnx.export(
            w,
            (ids, mask),
            str(inline),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in INPUT_NAMES + OUTPUT_NAMES},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
        stage("torch.onnx.export(dynamo=False), inline", t0)
        del w
        gc.collect()
        t0 = time.perf_counter()
        m = ir.load(str(inline))
        ir.save(m, str(model_path), external_data="model.onnx.data")
        del m
        gc.collect()
        inline.unlink()
        stage("re-save with external data (onnx_ir)", t0)

    t0 = time.perf_counter()
    normalize_file(model_path)
    stage("strip stack traces, normalize paths", t0)

    t0 = time.perf_counter()
    import onnx

    onnx.checker.check_model(str(model_path))  # by path: external data is checked, not loaded
    stage("onnx.checker.check_model", t0)

    t0 = time.perf_counter()
    sums = {f: sha256_file(out_dir / f) for f in ("model.onnx", "model.onnx.data")}
    stage("sha256", t0)

    info = {
        "generated_by": "tools/bench/make_modernbert_large.py" + (" --smoke" if smoke else ""),
        "variant": variant,
        "exporter": f"torch.onnx.export(dynamo={variant == 'dynamo'})",
        "opset": OPSET,
        "versions": versions(),
        "config": cfg_kwargs,
        "attn_implementation": attn_impl,
        "parameters": n_params,
        "seeds": {"weights": SEED, "example_inputs": TRACE_SEED, "check_input": CHECK_SEED},
        "export_seconds_total": round(time.perf_counter() - t_start, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "stages": stages,
        "bytes": {f: (out_dir / f).stat().st_size for f in ("model.onnx", "model.onnx.data")},
        "sha256": sums,
    }
    (out_dir / "export_info.json").write_text(json.dumps(info, indent=1) + "\n")
    return 0


# --------------------------------------------------------------------------------------------
# Child 2: load in onnxruntime (CPU) and run the batch 1 x seq 16 check
# --------------------------------------------------------------------------------------------


def child_verify(out_dir: Path) -> int:
    import numpy as np
    import onnxruntime as ort

    data = np.load(out_dir / "check_b1_s16.npz")
    feeds = {n: data[n] for n in INPUT_NAMES}
    ref = data["last_hidden_state"]
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = max(1, os.cpu_count() or 1)
    t0 = time.perf_counter()
    sess = ort.InferenceSession(str(out_dir / "model.onnx"), so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    rss_after_load = current_rss_mib()
    t0 = time.perf_counter()
    (out,) = sess.run(None, feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        runs.append((time.perf_counter() - t0) * 1e3)
    runs.sort()
    diff = float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64))))
    res = {
        "ort_version": ort.__version__,
        "threads": so.intra_op_num_threads,
        "session_load_s": round(load_s, 2),
        "first_run_ms": round(first_ms, 1),
        "median_run_ms_of_5": round(runs[2], 1),
        "min_run_ms_of_5": round(runs[0], 1),
        "output_shape": list(out.shape),
        "max_abs_diff_vs_pytorch": diff,
        "allclose_rtol1e-4_atol1e-4": bool(np.allclose(out, ref, rtol=1e-4, atol=1e-4)),
        "rss_mib_after_load": round(rss_after_load, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    print("VERIFY " + json.dumps(res), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# Parent: orchestrate, summarize
# --------------------------------------------------------------------------------------------


def run_child(args: list[str]) -> tuple[int, str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        sys.stdout.write(line)
        sys.stdout.flush()
    return proc.wait(), "".join(lines)


def is_present(d: Path) -> bool:
    return all((d / f).is_file() for f in FILES)


def graph_stats(model_path: Path) -> dict:
    import onnx

    m = onnx.load(str(model_path), load_external_data=False)
    hist = op_histogram(m.graph)
    ext = sum(1 for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)

    def dims(vi):
        t = vi.type.tensor_type
        return "[" + ",".join(d.dim_param if d.HasField("dim_param") else str(d.dim_value) for d in t.shape.dim) + "]"

    return {
        "nodes": sum(hist.values()),
        "distinct_ops": len(hist),
        "op_histogram": dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "initializers": len(m.graph.initializer),
        "external_initializers": ext,
        "functions": len(m.functions),
        "ir_version": m.ir_version,
        "opset_imports": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "inputs": [f"{i.name} {dims(i)}" for i in m.graph.input],
        "outputs": [f"{o.name} {dims(o)}" for o in m.graph.output],
    }


def summary_markdown(rows: list[tuple[str, Path, dict, dict, dict | None]]) -> str:
    L = ["| | " + " | ".join(f"`{d.name}`" for _, d, _, _, _ in rows) + " |",
         "|---|" + "---|" * len(rows)]

    def row(label, fn):
        L.append(f"| {label} | " + " | ".join(fn(*r) for r in rows) + " |")

    row("exporter", lambda v, d, info, st, ver: info["exporter"])
    row("producer / IR", lambda v, d, info, st, ver: f"{st['producer']} / IR {st['ir_version']}")
    row("opsets", lambda v, d, info, st, ver: ", ".join(f"{k} {x}" for k, x in st["opset_imports"].items()))
    row("inputs", lambda v, d, info, st, ver: "<br>".join(st["inputs"]))
    row("outputs", lambda v, d, info, st, ver: "<br>".join(st["outputs"]))
    row("`model.onnx`", lambda v, d, info, st, ver: f"{info['bytes']['model.onnx']:,} B")
    row("`model.onnx.data`", lambda v, d, info, st, ver: f"{info['bytes']['model.onnx.data']:,} B "
        f"({info['bytes']['model.onnx.data'] / 2**30:.2f} GiB)")
    row("parameters (PyTorch)", lambda v, d, info, st, ver: f"{info['parameters']:,}")
    row("initializers (external)", lambda v, d, info, st, ver: f"{st['initializers']} ({st['external_initializers']})")
    row("nodes / distinct ops", lambda v, d, info, st, ver: f"{st['nodes']:,} / {st['distinct_ops']}")
    row("export wall time", lambda v, d, info, st, ver: f"{info['export_seconds_total']:.0f} s")
    row("export peak RSS", lambda v, d, info, st, ver: f"{info['peak_rss_mib'] / 1024:.2f} GiB")
    if all(r[4] for r in rows):
        row("ORT session load", lambda v, d, info, st, ver: f"{ver['session_load_s']:.1f} s")
        row("ORT run 1x16 (first / median of 5)",
            lambda v, d, info, st, ver: f"{ver['first_run_ms']:.0f} ms / {ver['median_run_ms_of_5']:.0f} ms")
        row("ORT max abs diff vs PyTorch", lambda v, d, info, st, ver: f"{ver['max_abs_diff_vs_pytorch']:.2e}")
        row("ORT process peak RSS", lambda v, d, info, st, ver: f"{ver['peak_rss_mib'] / 1024:.2f} GiB")
    L.append("")
    for v, d, info, st, ver in rows:
        top = list(st["op_histogram"].items())
        L.append(f"Top 15 ops, `{d.name}` ({st['nodes']:,} nodes): "
                 + ", ".join(f"{k} {c}" for k, c in top[:15])
                 + (f"; {len(top) - 15} more op types, {sum(c for _, c in top[15:])} nodes" if len(top) > 15 else "")
                 + "\n")
        L.append(f"Export stages, `{d.name}`: "
                 + "; ".join(f"{k} {s['seconds']:.0f} s (peak {s['peak_rss_mib_so_far'] / 1024:.2f} GiB)"
                             for k, s in info["stages"].items()) + "\n")
    return "\n".join(L)


def check_versions(allow_other: bool) -> None:
    v = versions()
    bad = {k: (v.get(k), want) for k, want in PINNED.items() if not str(v.get(k, "")).startswith(want)}
    if bad:
        msg = "version mismatch (have, pinned): " + ", ".join(f"{k} {a} != {b}" for k, (a, b) in bad.items())
        if allow_other:
            print("warning: " + msg, file=sys.stderr)
        else:
            sys.exit(msg + "\n(use --allow-other-versions to go on anyway)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", help="exports to make: dynamo, legacy (default: both)")
    ap.add_argument("--out-root", type=Path, default=DEFAULT_OUT_ROOT,
                    help="folder for modernbert-large-{dynamo,legacy}/ (default: <repo>/target/bench)")
    ap.add_argument("--force", action="store_true", help="rebuild exports that are already present")
    ap.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny config (4 layers, hidden 64) into modernbert-smoke-*/, to test the script")
    ap.add_argument("--summary", type=Path, help="also write the Markdown summary to this file")
    ap.add_argument("--allow-other-versions", action="store_true")
    ap.add_argument("--_export", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--_verify", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._export:
        return child_export(args._export, args._dir, args.smoke)
    if args._verify:
        return child_verify(args._dir)

    check_versions(args.allow_other_versions)
    variants = args.variants or list(VARIANTS)
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r}: choose from {', '.join(VARIANTS)}")
    out_root = args.out_root.resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    stem = "modernbert-smoke" if args.smoke else "modernbert-large"
    rows = []
    failed = False
    for v in variants:
        d = out_root / f"{stem}-{v}"
        if is_present(d) and not args.force:
            print(f"== {d}: already present, kept (--force to rebuild)", flush=True)
        else:
            print(f"== {d}: exporting with torch.onnx.export(dynamo={v == 'dynamo'})", flush=True)
            tmp = out_root / f".{d.name}.partial"
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            rc, _ = run_child(["--_export", v, "--_dir", str(tmp)] + (["--smoke"] if args.smoke else []))
            if rc != 0:
                print(f"   export FAILED (exit {rc}); partial output left in {tmp}", flush=True)
                failed = True
                continue
            if d.exists():
                shutil.rmtree(d)
            os.replace(tmp, d)
        info = json.loads((d / "export_info.json").read_text())
        st = graph_stats(d / "model.onnx")
        ver = None
        if not args.no_verify:
            print(f"== {d}: onnxruntime CPU check, batch 1 x seq 16", flush=True)
            rc, out = run_child(["--_verify", "--_dir", str(d)])
            lines = [l for l in out.splitlines() if l.startswith("VERIFY ")]
            if rc != 0 or not lines:
                print(f"   onnxruntime check FAILED (exit {rc})", flush=True)
                failed = True
            else:
                ver = json.loads(lines[-1][len("VERIFY "):])
                if not ver["allclose_rtol1e-4_atol1e-4"]:
                    print("   onnxruntime output differs from PyTorch's", flush=True)
                    failed = True
        rows.append((v, d, info, st, ver))

    if rows:
        md = summary_markdown(rows)
        print("\n" + md)
        if args.summary:
            args.summary.write_text(md + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
