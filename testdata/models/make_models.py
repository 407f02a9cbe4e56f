#!/usr/bin/env python3
"""Build the tiny random-weight exported models under testdata/models/.

Every model is built from a config (no download: HF_HUB_OFFLINE=1), with fixed
seeds, exported to ONNX, and stored as

    testdata/models/<name>/model.onnx
    testdata/models/<name>/test_data_set_<n>/input_<i>.pb    (ONNX backend-test layout)
    testdata/models/<name>/test_data_set_<n>/output_<i>.pb   (PyTorch reference outputs)

plus testdata/models/manifest.json (what each data set exercises, and what
onnxruntime CPU is expected to do with it) and testdata/models/README.md (the
tables below are generated from what this script observed, never typed in).

Usage (with the pinned versions of requirements.txt in a venv):

    python3 -m venv /tmp/models-venv
    /tmp/models-venv/bin/pip install -r testdata/models/requirements.txt
    /tmp/models-venv/bin/python testdata/models/make_models.py            # all models
    /tmp/models-venv/bin/python testdata/models/make_models.py llama_legacy cond_nested   # some

The script exits non-zero when onnxruntime disagrees with what the script
predicted for a data set (see `expect` in manifest.json), so a change in an
exporter's behaviour is noticed, not silently recorded.
"""

from __future__ import annotations

import os
import sys

# String hashing must be fixed for the exports to be byte-identical from run to run: transformers
# iterates over a set of layer-type names (ModernBERT's rotary embeddings), so the node order
# follows hash(str). Re-run this interpreter with PYTHONHASHSEED=0 if it was not started so.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import collections
import contextlib
import hashlib
import io
import json
import shutil
import site
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

PINNED = {
    "torch": "2.15.0",
    "transformers": "5.23.0",
    "onnx": "1.23.2",
    "onnxruntime": "1.32.0",
}

# Tolerances used both here (to decide "match") and by check_models.py.
RTOL = 1e-4
ATOL = 1e-5

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))


# --------------------------------------------------------------------------------------------
# Data structures
# --------------------------------------------------------------------------------------------


@dataclass
class DataSet:
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    note: str
    # "match": ORT CPU reproduces the PyTorch outputs; "mismatch": ORT runs but disagrees
    # (the graph is wrong for this input, e.g. a baked trace); "error": ORT cannot run it.
    expect: str = "match"
    reason: str = ""


@dataclass
class Probe:
    """An input that is not stored as a data set, only reported in the README."""

    note: str
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]


@dataclass
class Built:
    model: onnx.ModelProto
    exporter: str
    description: str
    datasets: list[DataSet]
    dynamic: str = ""
    probes: list[Probe] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


BUILDERS: dict[str, Callable[[], Built]] = {}
GROUPS: dict[str, str] = {}


def builder(name: str, group: str):
    def deco(fn):
        BUILDERS[name] = fn
        GROUPS[name] = group
        return fn

    return deco


class ExportFailure(Exception):
    """An exporter path that fails: recorded in the README, no model written."""


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def to_np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().contiguous().numpy()
    return np.asarray(x)


def flatten_outputs(out) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [to_np(o) for o in out]
    return [to_np(out)]


def _path_prefixes() -> list[tuple[str, str]]:
    """Machine-specific path prefixes that exporters write into stack traces, mapped to stable text."""
    pairs = []
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        pairs.append((str(Path(sp)) + "/", "<site-packages>/"))
    pairs.append((str(Path(torch.__file__).parent.parent) + "/", "<site-packages>/"))
    pairs.append((str(REPO_ROOT) + "/", ""))
    pairs.append((str(Path(sys.prefix)) + "/", "<prefix>/"))
    pairs.append((tempfile.gettempdir() + "/", "<tmp>/"))
    # Longest first, so the most specific prefix wins.
    seen, out = set(), []
    for a, b in sorted(pairs, key=lambda p: -len(p[0])):
        if a not in seen:
            seen.add(a)
            out.append((a, b))
    return out


PATH_PREFIXES = _path_prefixes()


def _normalize_text(s: str) -> str:
    for a, b in PATH_PREFIXES:
        s = s.replace(a, b)
    return s


# Node metadata dropped from the files: the dynamo exporter's per-node Python stack traces are a
# third of a model's bytes here, and name files on the machine that ran the export.
DROPPED_NODE_METADATA = ("pkg.torch.onnx.stack_trace",)


def _clean_node_metadata(n: onnx.NodeProto) -> None:
    keep = [(p.key, _normalize_text(p.value)) for p in n.metadata_props if p.key not in DROPPED_NODE_METADATA]
    del n.metadata_props[:]
    for k, v in keep:
        n.metadata_props.add(key=k, value=v)


def _normalize_graph(g: onnx.GraphProto) -> None:
    g.doc_string = _normalize_text(g.doc_string)
    for n in g.node:
        n.doc_string = _normalize_text(n.doc_string)
        _clean_node_metadata(n)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _normalize_graph(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    _normalize_graph(sg)
    for p in g.metadata_props:
        p.value = _normalize_text(p.value)


def normalize_model(m: onnx.ModelProto) -> onnx.ModelProto:
    """Make the file independent of where this script and its venv live, and smaller: drop the
    per-node stack traces (DROPPED_NODE_METADATA) and rewrite machine-specific path prefixes in the
    remaining strings. The graph, names, weights and other metadata are the exporter's own."""
    m.doc_string = _normalize_text(m.doc_string)
    for p in m.metadata_props:
        p.value = _normalize_text(p.value)
    _normalize_graph(m.graph)
    for f in m.functions:
        for n in f.node:
            _clean_node_metadata(n)
    return m


def load_inline(path: Path) -> onnx.ModelProto:
    """Load a model with any external data pulled back inline (the models here are tiny)."""
    m = onnx.load(str(path), load_external_data=True)
    for t in _all_initializers(m.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise RuntimeError("external data left after load")
    return m


def _all_initializers(g: onnx.GraphProto):
    yield from g.initializer
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_initializers(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    yield from _all_initializers(sg)


def op_histogram(g: onnx.GraphProto, hist=None) -> collections.Counter:
    """Node counts over the graph and every subgraph; ops outside the default domain are
    written domain::op."""
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


def dims_of(vi: onnx.ValueInfoProto) -> str:
    t = vi.type.tensor_type
    elem = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "?"
    if not t.HasField("shape"):
        return f"{elem}[?]"
    ds = []
    for d in t.shape.dim:
        ds.append(d.dim_param if d.HasField("dim_param") else (str(d.dim_value) if d.HasField("dim_value") else "?"))
    return f"{elem}[{','.join(ds)}]"


def run_ort(model_path: Path, input_names: list[str], inputs: list[np.ndarray]):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(input_names, inputs)))


def compare(got: list[np.ndarray], ref: list[np.ndarray]) -> tuple[bool, float, str]:
    if len(got) != len(ref):
        return False, float("inf"), f"{len(got)} outputs, expected {len(ref)}"
    worst = 0.0
    ok = True
    why = ""
    for i, (g, r) in enumerate(zip(got, ref)):
        g = np.asarray(g)
        if g.shape != r.shape:
            return False, float("inf"), f"output {i}: shape {g.shape}, expected {r.shape}"
        if g.dtype != r.dtype:
            return False, float("inf"), f"output {i}: dtype {g.dtype}, expected {r.dtype}"
        if g.size == 0:
            continue
        if np.issubdtype(r.dtype, np.floating):
            d = float(np.max(np.abs(g.astype(np.float64) - r.astype(np.float64))))
            good = bool(np.allclose(g, r, rtol=RTOL, atol=ATOL, equal_nan=True))
        else:
            d = float(np.max(np.abs(g.astype(np.int64) - r.astype(np.int64))))
            good = bool(np.array_equal(g, r))
        worst = max(worst, d)
        if not good and ok:
            ok = False
            why = f"output {i}: max abs diff {d:.3g}"
    return ok, worst, why


@contextlib.contextmanager
def quiet():
    """Silence the exporters' progress chatter (stdout/stderr), keep it for error reports."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        yield buf


def short_error(e: BaseException) -> str:
    """The exception's type and message, trimmed to its first lines (exporter errors are long)."""
    chain = []
    cur = e
    while cur is not None and len(chain) < 4:
        msg = str(cur).strip().splitlines()
        first = " ".join(m.strip() for m in msg[:3])[:400]
        chain.append(f"{type(cur).__module__}.{type(cur).__name__}: {first}")
        cur = cur.__cause__ or (cur.__context__ if not cur.__suppress_context__ else None)
    return " <- caused by: ".join(chain)


def torch_legacy_export(module, args, input_names, output_names, dynamic_axes, **kw) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "model.onnx"
        with quiet():
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                dynamo=False,
                **kw,
            )
        return load_inline(path)


def torch_dynamo_export(module, args, input_names, output_names, dynamic_shapes, **kw) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "model.onnx"
        with quiet():
            prog = torch.onnx.export(
                module,
                args,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                **kw,
            )
            prog.save(str(path), external_data=False)
        return load_inline(path)


# --------------------------------------------------------------------------------------------
# 1. ModernBERT (encoder), legacy and dynamo exporters
# --------------------------------------------------------------------------------------------

MB_VOCAB = 128


def make_modernbert():
    from transformers import ModernBertConfig, ModernBertModel

    seed_all(1001)
    cfg = ModernBertConfig(
        vocab_size=MB_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        max_position_embeddings=512,
        layer_types=["full_attention", "sliding_attention", "sliding_attention"],
        local_attention=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
    )
    model = ModernBertModel(cfg).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return Wrapper(model).eval(), cfg


def modernbert_inputs(gen: torch.Generator, batch: int, seq: int, valid: list[int]):
    ids = torch.randint(3, MB_VOCAB, (batch, seq), generator=gen)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(valid):
        mask[b, :n] = 1
    return ids, mask


def modernbert_datasets(w, local_attention: int):
    gen = torch.Generator().manual_seed(2001)
    # Padded rows stay close enough to a valid token that every sliding window (±local/2) of a
    # padded query still holds a valid key: a query row that is masked out completely is
    # exporter-dependent (see the probe below) and is kept out of the stored data sets.
    half = local_attention // 2
    specs = [(1, 1, [1]), (2, 7, [7, 4]), (3, 33, [33, 30, 33 - half + 2])]
    out = []
    for b, s, valid in specs:
        ids, mask = modernbert_inputs(gen, b, s, valid)
        with torch.no_grad():
            ref = w(ids, mask)
        out.append(
            DataSet([to_np(ids), to_np(mask)], flatten_outputs(ref), f"batch {b}, seq {s}, valid lengths {valid}")
        )
    return out


def modernbert_probe(w):
    gen = torch.Generator().manual_seed(2002)
    ids, mask = modernbert_inputs(gen, 1, 33, [10])
    with torch.no_grad():
        ref = w(ids, mask)
    return Probe(
        "batch 1, seq 33, 10 valid tokens: padded queries past position 18 have no valid key in their "
        "sliding window (fully masked attention rows)",
        [to_np(ids), to_np(mask)],
        flatten_outputs(ref),
    )


MB_NAMES = ["input_ids", "attention_mask"]


@builder("modernbert_legacy", "ModernBERT")
def build_modernbert_legacy():
    w, cfg = make_modernbert()
    gen = torch.Generator().manual_seed(2000)
    ids, mask = modernbert_inputs(gen, 2, 7, [7, 5])
    dyn = {n: {0: "batch", 1: "seq"} for n in MB_NAMES + ["last_hidden_state"]}
    m = torch_legacy_export(w, (ids, mask), MB_NAMES, ["last_hidden_state"], dyn)
    return Built(
        m,
        "torch.onnx.export(dynamo=False)",
        "ModernBertModel, 3 layers (1 global + 2 sliding-window attention, window 16), hidden 32, 2 heads, "
        "vocab 128; output last_hidden_state",
        modernbert_datasets(w, cfg.local_attention),
        dynamic="batch, seq",
        probes=[modernbert_probe(w)],
    )


@builder("modernbert_dynamo", "ModernBERT")
def build_modernbert_dynamo():
    w, cfg = make_modernbert()
    gen = torch.Generator().manual_seed(2000)
    ids, mask = modernbert_inputs(gen, 2, 7, [7, 5])
    B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
    m = torch_dynamo_export(
        w, (ids, mask), MB_NAMES, ["last_hidden_state"], {"input_ids": {0: B, 1: S}, "attention_mask": {0: B, 1: S}}
    )
    return Built(
        m,
        "torch.onnx.export(dynamo=True)",
        "same weights and config as modernbert_legacy",
        modernbert_datasets(w, cfg.local_attention),
        dynamic="batch, seq",
        probes=[modernbert_probe(w)],
    )


# --------------------------------------------------------------------------------------------
# 2. Llama (decoder), legacy and dynamo exporters; long positions for the fp16 pass
# --------------------------------------------------------------------------------------------

LL_VOCAB = 128
LL_NAMES = ["input_ids", "attention_mask", "position_ids"]


def make_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    seed_all(1002)
    cfg = LlamaConfig(
        vocab_size=LL_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        use_cache=False,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, position_ids):
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
            ).logits

    return Wrapper(model).eval(), cfg


def llama_inputs(gen, batch, seq, valid, offset=0, left=False):
    ids = torch.randint(3, LL_VOCAB, (batch, seq), generator=gen)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(valid):
        if left:
            mask[b, seq - n :] = 1
        else:
            mask[b, :n] = 1
    pos = (torch.arange(seq) + offset).unsqueeze(0).expand(batch, seq).contiguous()
    return ids, mask, pos


def llama_datasets(w):
    gen = torch.Generator().manual_seed(2003)
    # Right padding only: with left padding the first query rows are fully masked (see the probe).
    specs = [
        (1, 1, [1], 0),
        (2, 7, [7, 5], 0),
        (3, 33, [33, 33, 29], 0),
        (1, 16, [16], 2040),  # positions 2040..2055 straddle 2048, where fp16 stops holding every integer
        (1, 5, [5], 4000),
        (2, 9, [9, 6], 8180),  # up to 8188, just under max_position_embeddings = 8192
    ]
    out = []
    for b, s, valid, off in specs:
        ids, mask, pos = llama_inputs(gen, b, s, valid, off)
        with torch.no_grad():
            ref = w(ids, mask, pos)
        out.append(
            DataSet(
                [to_np(ids), to_np(mask), to_np(pos)],
                flatten_outputs(ref),
                f"batch {b}, seq {s}, valid lengths {valid}, position_ids {off}..{off + s - 1}",
            )
        )
    return out


def llama_probe(w):
    gen = torch.Generator().manual_seed(2004)
    ids, mask, pos = llama_inputs(gen, 2, 7, [7, 5], 0, left=True)
    with torch.no_grad():
        ref = w(ids, mask, pos)
    return Probe(
        "batch 2, seq 7, row 1 left-padded by 2: its first two query rows are fully masked",
        [to_np(ids), to_np(mask), to_np(pos)],
        flatten_outputs(ref),
    )


LLAMA_DESC = (
    "LlamaForCausalLM, 2 layers, hidden 32, 4 heads / 2 KV heads (GQA), vocab 128, "
    "max_position_embeddings 8192, rope_theta 500000, no KV cache; inputs input_ids, attention_mask, "
    "position_ids; output logits"
)


@builder("llama_legacy", "Llama")
def build_llama_legacy():
    w, _ = make_llama()
    gen = torch.Generator().manual_seed(2000)
    args = llama_inputs(gen, 2, 7, [7, 5])
    dyn = {n: {0: "batch", 1: "seq"} for n in LL_NAMES + ["logits"]}
    m = torch_legacy_export(w, args, LL_NAMES, ["logits"], dyn)
    return Built(
        m,
        "torch.onnx.export(dynamo=False)",
        LLAMA_DESC,
        llama_datasets(w),
        dynamic="batch, seq",
        probes=[llama_probe(w)],
    )


@builder("llama_dynamo", "Llama")
def build_llama_dynamo():
    w, _ = make_llama()
    gen = torch.Generator().manual_seed(2000)
    args = llama_inputs(gen, 2, 7, [7, 5])
    B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
    m = torch_dynamo_export(w, args, LL_NAMES, ["logits"], {n: {0: B, 1: S} for n in LL_NAMES})
    return Built(
        m,
        "torch.onnx.export(dynamo=True)",
        "same weights and config as llama_legacy",
        llama_datasets(w),
        dynamic="batch, seq",
        probes=[llama_probe(w)],
    )


# --------------------------------------------------------------------------------------------
# 3. MoE decoders through transformers' own OnnxExporter
# --------------------------------------------------------------------------------------------

MOE_VOCAB = 128
MOE_NAMES = ["input_ids", "attention_mask"]


def make_moe_decoder(arch: str):
    common = dict(
        vocab_size=MOE_VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        use_cache=False,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if arch == "mixtral":
        from transformers import MixtralConfig, MixtralForCausalLM

        seed_all(1003)
        cfg = MixtralConfig(intermediate_size=48, num_local_experts=6, num_experts_per_tok=2, **common)
        return MixtralForCausalLM(cfg).eval(), "MixtralForCausalLM, 2 layers, hidden 32, 6 experts top-2 (renormalised), expert intermediate 48"
    if arch == "qwen2_moe":
        from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

        seed_all(1004)
        cfg = Qwen2MoeConfig(
            intermediate_size=64,
            moe_intermediate_size=48,
            shared_expert_intermediate_size=64,
            num_experts=8,
            num_experts_per_tok=2,
            decoder_sparse_step=1,
            norm_topk_prob=False,
            **common,
        )
        return (
            Qwen2MoeForCausalLM(cfg).eval(),
            "Qwen2MoeForCausalLM, 2 layers, hidden 32, 8 experts top-2 (not renormalised), expert intermediate 48, "
            "sigmoid-gated shared expert (intermediate 64)",
        )
    if arch == "olmoe":
        from transformers import OlmoeConfig, OlmoeForCausalLM

        seed_all(1005)
        cfg = OlmoeConfig(intermediate_size=48, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, **common)
        return OlmoeForCausalLM(cfg).eval(), "OlmoeForCausalLM, 2 layers, hidden 32, 8 experts top-2 (not renormalised), expert intermediate 48, q/k RMSNorm"
    raise ValueError(arch)


def moe_inputs(gen, batch, seq, valid):
    ids = torch.randint(3, MOE_VOCAB, (batch, seq), generator=gen)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for b, n in enumerate(valid):
        mask[b, :n] = 1
    return ids, mask


def hf_onnx_export(model, form: str) -> tuple[onnx.ModelProto, str]:
    """Export through transformers.exporters.exporter_onnx.OnnxExporter. Returns the model and the
    experts implementation the trace ran with."""
    import onnx_ir
    from transformers.exporters.configs import OnnxConfig
    from transformers.exporters.exporter_onnx import OnnxExporter

    gen = torch.Generator().manual_seed(2000)
    ids, mask = moe_inputs(gen, 2, 7, [7, 5])
    B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
    kwargs: dict[str, Any] = dict(
        dynamic=True, dynamic_shapes={"input_ids": {0: B, 1: S}, "attention_mask": {0: B, 1: S}}
    )
    if form == "batched_mm":
        model.set_experts_implementation("batched_mm")
    elif form == "eager":
        model.set_experts_implementation("eager")
    elif form == "cuda_fusion":
        kwargs["ort_fusions"] = "cuda"  # the exporter forces experts_implementation="batched_mm" itself
    impl = model.get_experts_implementation()
    if isinstance(impl, dict):  # {submodule prefix: implementation}
        impl = ", ".join(sorted(set(str(v) for v in impl.values())))
    if form == "cuda_fusion":
        impl = "batched_mm (forced by ort_fusions='cuda')"
    with quiet():
        exported = OnnxExporter().export(model, {"input_ids": ids, "attention_mask": mask}, OnnxConfig(**kwargs))
    proto = onnx_ir.to_proto(exported.program)
    # Round-trip through bytes so the proto is a plain, fully-inline ModelProto.
    proto = onnx.load_from_string(proto.SerializeToString())
    return proto, str(impl)


def moe_datasets(model):
    gen = torch.Generator().manual_seed(2005)
    specs = [(1, 1, [1]), (2, 7, [7, 5]), (3, 33, [33, 33, 29])]
    out = []
    for b, s, valid in specs:
        ids, mask = moe_inputs(gen, b, s, valid)
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=mask).logits
        out.append(DataSet([to_np(ids), to_np(mask)], flatten_outputs(ref), f"batch {b}, seq {s}, valid lengths {valid}"))
    return out


def _moe_builder(arch: str, form: str):
    def build():
        model, desc = make_moe_decoder(arch)
        try:
            proto, impl = hf_onnx_export(model, form)
        except Exception as e:  # noqa: BLE001 - any exporter failure is recorded
            raise ExportFailure(short_error(e)) from e
        # Reference outputs from PyTorch, run with the experts implementation the trace used.
        if form in ("batched_mm", "cuda_fusion"):
            model.set_experts_implementation("batched_mm")
        elif form == "eager":
            model.set_experts_implementation("eager")
        ds = moe_datasets(model)
        notes = [f"experts implementation during the trace: {impl}"]
        hist = op_histogram(proto.graph)
        if form == "cuda_fusion":
            n_moe = hist.get("com.microsoft::MoE", 0)
            notes.append(f"com.microsoft.MoE nodes emitted by the fusion: {n_moe}")
            moe_nodes = [n for n in proto.graph.node if n.domain == "com.microsoft" and n.op_type == "MoE"]
            if moe_nodes:
                n0 = moe_nodes[0]
                attrs = ", ".join(
                    f"{a.name}={onnx.helper.get_attribute_value(a)!r}".replace("b'", "'") for a in n0.attribute
                )
                ins = ", ".join(x if x else "(absent)" for x in n0.input)
                notes.append(f"first MoE node: attributes {attrs}; {len(n0.input)} inputs: {ins}")
            if n_moe:
                for d in ds:
                    d.expect = "error"
                    d.reason = (
                        "com.microsoft.MoE as fused for CUDA (separate fc3/up weights) does not run on "
                        "ONNX Runtime's CPU provider; reference outputs are PyTorch's"
                    )
        exporter = "transformers OnnxExporter" + (", ort_fusions='cuda'" if form == "cuda_fusion" else "")
        exporter += f" (experts: {impl})"
        return Built(proto, exporter, desc, ds, dynamic="batch, seq", notes=notes)

    return build


for _arch in ("mixtral", "qwen2_moe", "olmoe"):
    for _form in ("default", "batched_mm", "cuda_fusion"):
        builder(f"{_arch}_hf_{_form}", "MoE decoders (transformers OnnxExporter)")(_moe_builder(_arch, _form))
# The eager experts loop is not one of the asked-for forms; it is attempted so that its failure
# (or success) is on record beside the others.
builder("mixtral_hf_eager", "MoE decoders (transformers OnnxExporter)")(_moe_builder("mixtral", "eager"))


# --------------------------------------------------------------------------------------------
# 4. torch.cond modules through dynamo
# --------------------------------------------------------------------------------------------

COND_F = 8


def _cond_build(module, args, names, out_names, dynamic_shapes, datasets_fn, desc):
    module.eval()
    m = torch_dynamo_export(module, args, names, out_names, dynamic_shapes)
    ds = []
    for note, inputs in datasets_fn():
        with torch.no_grad():
            ref = module(*inputs)
        ds.append(DataSet([to_np(t) for t in inputs], flatten_outputs(ref), note))
    return Built(m, "torch.onnx.export(dynamo=True)", desc, ds, dynamic="batch")


class CondSingle(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(COND_F, COND_F)

    def forward(self, x):
        def then_(x):
            return torch.relu(self.lin(x))

        def else_(x):
            return torch.sigmoid(x) * 2.0

        return torch.cond(x.sum() > 0, then_, else_, (x,))


@builder("cond_single", "torch.cond (dynamo)")
def build_cond_single():
    seed_all(1101)
    mod = CondSingle()
    gen = torch.Generator().manual_seed(2101)

    def data():
        out = []
        for b, sign in [(1, 1.0), (2, -1.0), (5, 1.0), (3, -1.0)]:
            x = torch.randn(b, COND_F, generator=gen).abs() * sign
            out.append((f"batch {b}, x.sum() {'>' if sign > 0 else '<='} 0 -> {'then' if sign > 0 else 'else'} branch", [x]))
        return out

    B = torch.export.Dim("batch")
    x = torch.randn(3, COND_F, generator=torch.Generator().manual_seed(2100))
    return _cond_build(
        mod, (x,), ["x"], ["y"], {"x": {0: B}}, data,
        "one torch.cond, one output; then-branch captures a Linear's weights (relu(Linear(x))), else sigmoid(x)*2",
    )


class CondMulti(torch.nn.Module):
    def forward(self, x, y):
        def then_(x, y):
            return x + y, x * y, (x - y).abs().sum(-1)

        def else_(x, y):
            return x - y, x / (y.abs() + 1.0), (x + y).amax(-1)

        return torch.cond(x.mean() > y.mean(), then_, else_, (x, y))


@builder("cond_multi_output", "torch.cond (dynamo)")
def build_cond_multi():
    seed_all(1102)
    mod = CondMulti()
    gen = torch.Generator().manual_seed(2102)

    def data():
        out = []
        for b, hi in [(1, True), (2, False), (4, True), (6, False)]:
            x = torch.randn(b, COND_F, generator=gen)
            y = torch.randn(b, COND_F, generator=gen)
            x = x + (2.0 if hi else -2.0)
            out.append((f"batch {b}, x.mean() {'>' if hi else '<='} y.mean() -> {'then' if hi else 'else'} branch", [x, y]))
        return out

    B = torch.export.Dim("batch")
    g0 = torch.Generator().manual_seed(2100)
    args = (torch.randn(3, COND_F, generator=g0), torch.randn(3, COND_F, generator=g0))
    return _cond_build(
        mod, args, ["x", "y"], ["sum_or_diff", "prod_or_ratio", "reduced"], {"x": {0: B}, "y": {0: B}}, data,
        "one torch.cond with three outputs (two [batch,8], one [batch])",
    )


class CondNested(torch.nn.Module):
    def forward(self, x):
        def inner_then(x):
            return torch.cond(x.max() > 1.0, lambda x: x * 3.0, lambda x: x + 3.0, (x,))

        def inner_else(x):
            return torch.cond(x.min() < -1.0, lambda x: torch.exp(x), lambda x: -x, (x,))

        return torch.cond(x.sum() > 0, inner_then, inner_else, (x,))


@builder("cond_nested", "torch.cond (dynamo)")
def build_cond_nested():
    mod = CondNested()
    gen = torch.Generator().manual_seed(2103)

    def data():
        out = []
        # (outer branch, inner branch): build x so that each of the four paths is taken.
        for b, path in [(1, "then/then"), (2, "then/else"), (3, "else/then"), (4, "else/else")]:
            u = torch.rand(b, COND_F, generator=gen)
            if path == "then/then":
                x = u * 2.0 + 0.1  # sum > 0, some element > 1
                x[0, 0] = 1.5
            elif path == "then/else":
                x = u * 0.9 + 0.05  # sum > 0, max <= 1
            elif path == "else/then":
                x = -(u * 2.0 + 0.1)  # sum <= 0, some element < -1
                x[0, 0] = -1.5
            else:
                x = -(u * 0.9 + 0.05)  # sum <= 0, min >= -1
            outer = "then" if float(x.sum()) > 0 else "else"
            inner = ("then" if float(x.max()) > 1.0 else "else") if outer == "then" else ("then" if float(x.min()) < -1.0 else "else")
            assert f"{outer}/{inner}" == path, (path, outer, inner)
            out.append((f"batch {b}, outer {outer} branch, inner {inner} branch", [x]))
        return out

    B = torch.export.Dim("batch")
    x = torch.randn(3, COND_F, generator=torch.Generator().manual_seed(2100))
    return _cond_build(
        mod, (x,), ["x"], ["y"], {"x": {0: B}}, data,
        "torch.cond whose branches each hold another torch.cond (If inside both If branches)",
    )


class CondCapture(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(COND_F, COND_F) * 0.3)
        self.register_buffer("b", torch.randn(COND_F))

    def forward(self, x, z):
        scale = z.sum()

        def then_(x):
            # captures a parameter, a buffer and an outer activation (scale) that are not operands
            return x @ self.w + self.b * scale

        def else_(x):
            # captures the graph input z itself
            return x * z + self.b

        return torch.cond(scale > 0, then_, else_, (x,))


@builder("cond_capture", "torch.cond (dynamo)")
def build_cond_capture():
    seed_all(1104)
    mod = CondCapture()
    gen = torch.Generator().manual_seed(2104)

    def data():
        out = []
        for b, pos in [(1, True), (2, False), (5, True), (3, False)]:
            x = torch.randn(b, COND_F, generator=gen)
            z = torch.rand(b, COND_F, generator=gen) + 0.1
            z = z if pos else -z
            out.append((f"batch {b}, z.sum() {'>' if pos else '<='} 0 -> {'then' if pos else 'else'} branch", [x, z]))
        return out

    B = torch.export.Dim("batch")
    g0 = torch.Generator().manual_seed(2100)
    args = (torch.randn(3, COND_F, generator=g0), torch.randn(3, COND_F, generator=g0))
    return _cond_build(
        mod, args, ["x", "z"], ["y"], {"x": {0: B}, "z": {0: B}}, data,
        "torch.cond whose branches use values that are not branch operands: a parameter, a buffer, an outer "
        "activation (z.sum()) and a graph input (z)",
    )


# --------------------------------------------------------------------------------------------
# 4b / 5. MoE layers: torch.cond per expert (dynamo), per-expert loop (legacy), baked traces
# --------------------------------------------------------------------------------------------

MOE_H, MOE_I, MOE_E, MOE_K = 16, 32, 6, 2


class Router(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = torch.nn.Linear(MOE_H, MOE_E, bias=False)

    def forward(self, x):
        p = torch.softmax(self.gate(x), dim=-1)
        w, sel = torch.topk(p, MOE_K, dim=-1)
        w = w / w.sum(dim=-1, keepdim=True)
        return w, sel


def expert_mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(MOE_H, MOE_I, bias=False), torch.nn.SiLU(), torch.nn.Linear(MOE_I, MOE_H, bias=False)
    )


class CondMoE(torch.nn.Module):
    """onnx-diagnostic's patched Qwen3-MoE shape: for every expert, torch.cond(count > 0, compute, skip)."""

    def __init__(self):
        super().__init__()
        self.router = Router()
        self.experts = torch.nn.ModuleList([expert_mlp() for _ in range(MOE_E)])

    def forward(self, x):
        w, sel = self.router(x)
        counts = torch.nn.functional.one_hot(sel, MOE_E).sum(dim=(0, 1))
        out = torch.zeros_like(x)
        for e in range(MOE_E):

            def compute(x, w, sel, out, expert=self.experts[e], e=e):
                tok, pos = torch.nonzero(sel == e, as_tuple=True)
                y = expert(x[tok]) * w[tok, pos].unsqueeze(-1)
                return out.index_add(0, tok, y)

            def skip(x, w, sel, out):
                return out.clone()

            out = torch.cond(counts[e] > 0, compute, skip, (x, w, sel, out))
        return out


class LoopModuleList(torch.nn.Module):
    """The classic per-expert loop over an nn.ModuleList (transformers 4.x style)."""

    def __init__(self, skip_empty: bool):
        super().__init__()
        self.skip_empty = skip_empty
        self.router = Router()
        self.experts = torch.nn.ModuleList([expert_mlp() for _ in range(MOE_E)])

    def forward(self, x):
        w, sel = self.router(x)
        out = torch.zeros_like(x)
        for e in range(MOE_E):
            tok, pos = torch.where(sel == e)
            if self.skip_empty and tok.numel() == 0:
                continue
            out.index_add_(0, tok, self.experts[e](x[tok]) * w[tok, pos, None])
        return out


class Loop3D(torch.nn.Module):
    """The same loop over 3-D [E, out, in] expert parameters indexed per expert (transformers 5 layout)."""

    def __init__(self, skip_empty: bool):
        super().__init__()
        self.skip_empty = skip_empty
        self.router = Router()
        # Same init scale as nn.Linear's default (kaiming-uniform bound 1/sqrt(fan_in)).
        self.w_up = torch.nn.Parameter((torch.rand(MOE_E, MOE_I, MOE_H) * 2 - 1) / MOE_H**0.5)
        self.w_down = torch.nn.Parameter((torch.rand(MOE_E, MOE_H, MOE_I) * 2 - 1) / MOE_I**0.5)

    def forward(self, x):
        w, sel = self.router(x)
        out = torch.zeros_like(x)
        for e in range(MOE_E):
            tok, pos = torch.where(sel == e)
            if self.skip_empty and tok.numel() == 0:
                continue
            h = torch.nn.functional.silu(torch.nn.functional.linear(x[tok], self.w_up[e]))
            y = torch.nn.functional.linear(h, self.w_down[e])
            out.index_add_(0, tok, y * w[tok, pos, None])
        return out


def experts_hit(module, x) -> list[int]:
    with torch.no_grad():
        _, sel = module.router(x)
    return sorted(set(int(v) for v in sel.flatten().tolist()))


def moe_layer_datasets(module, gen, token_counts):
    out = []
    for t in token_counts:
        x = torch.randn(t, MOE_H, generator=gen)
        with torch.no_grad():
            ref = module(x)
        out.append(DataSet([to_np(x)], flatten_outputs(ref), f"{t} tokens, experts hit {experts_hit(module, x)}"))
    return out


@builder("cond_moe_experts", "torch.cond (dynamo)")
def build_cond_moe():
    seed_all(1201)
    mod = CondMoE().eval()
    gen = torch.Generator().manual_seed(2201)
    x = torch.randn(3, MOE_H, generator=torch.Generator().manual_seed(2200))
    T = torch.export.Dim("tokens")
    m = torch_dynamo_export(mod, (x,), ["x"], ["y"], {"x": {0: T}})
    ds = moe_layer_datasets(mod, gen, [1, 7, 64])
    for d in ds:
        hit = experts_hit(mod, torch.from_numpy(d.inputs[0]))
        d.note += f"; then-branch (compute) for experts {hit}, else-branch (skip) for {sorted(set(range(MOE_E)) - set(hit))}"
    return Built(
        m,
        "torch.onnx.export(dynamo=True)",
        f"MoE layer [tokens,{MOE_H}] -> [tokens,{MOE_H}], {MOE_E} SiLU-MLP experts (nn.ModuleList, intermediate {MOE_I}), "
        f"softmax top-{MOE_K} renormalised; one torch.cond(count[e] > 0, compute, skip) per expert",
        ds,
        dynamic="tokens",
    )


@builder("moe_loop_legacy", "MoE layers (per-expert loop)")
def build_moe_loop_legacy():
    seed_all(1202)
    mod = LoopModuleList(skip_empty=False).eval()
    x = torch.randn(5, MOE_H, generator=torch.Generator().manual_seed(2200))
    m = torch_legacy_export(mod, (x,), ["x"], ["y"], {"x": {0: "tokens"}, "y": {0: "tokens"}})
    ds = moe_layer_datasets(mod, torch.Generator().manual_seed(2202), [1, 7, 33])
    return Built(
        m,
        "torch.onnx.export(dynamo=False)",
        f"MoE layer, {MOE_E} experts (nn.ModuleList), top-{MOE_K}; static `for e in range(E)` loop with "
        "torch.where + index_add_ and no skip: a complete trace, every expert present",
        ds,
        dynamic="tokens",
    )


@builder("moe_loop_dynamo", "MoE layers (per-expert loop)")
def build_moe_loop_dynamo():
    seed_all(1202)
    mod = LoopModuleList(skip_empty=False).eval()
    x = torch.randn(5, MOE_H, generator=torch.Generator().manual_seed(2200))
    T = torch.export.Dim("tokens")
    m = torch_dynamo_export(mod, (x,), ["x"], ["y"], {"x": {0: T}})
    ds = moe_layer_datasets(mod, torch.Generator().manual_seed(2202), [1, 7, 33])
    return Built(
        m,
        "torch.onnx.export(dynamo=True)",
        "same module and weights as moe_loop_legacy, through the dynamo exporter",
        ds,
        dynamic="tokens",
    )


def baked_datasets(mod, trace_x, gen):
    """Data sets for a trace made on one token: the trace input itself, inputs whose tokens route
    only to the traced experts, and inputs that reach other experts. The expectation of each is
    predicted from PyTorch's routing alone (correct iff every routed expert was traced)."""
    traced = set(experts_hit(mod, trace_x))
    cands = torch.randn(512, MOE_H, generator=gen)
    with torch.no_grad():
        _, sel = mod.router(cands)
    inside = [i for i in range(len(cands)) if set(sel[i].tolist()) <= traced]
    outside = [i for i in range(len(cands)) if not set(sel[i].tolist()) <= traced]
    chosen = [
        ("the trace input itself", trace_x),
        ("another token routed to the traced experts", cands[inside[0] : inside[0] + 1]),
        ("one token routed to an expert the trace dropped", cands[outside[0] : outside[0] + 1]),
        ("5 tokens, all routed to the traced experts", cands[inside[1:6]]),
        ("7 random tokens", torch.randn(7, MOE_H, generator=gen)),
        ("33 random tokens", torch.randn(33, MOE_H, generator=gen)),
    ]
    out = []
    for what, x in chosen:
        with torch.no_grad():
            ref = mod(x)
        hit = set(experts_hit(mod, x))
        missing = sorted(hit - traced)
        d = DataSet(
            [to_np(x)],
            flatten_outputs(ref),
            f"{what}: {x.shape[0]} token(s), experts hit {sorted(hit)}",
        )
        if missing:
            d.expect = "mismatch"
            d.reason = f"baked trace: routes tokens to experts {missing}, which the trace (experts {sorted(traced)}) dropped"
        out.append(d)
    return out, sorted(traced)


@builder("moe_baked_weights_present", "MoE layers (per-expert loop)")
def build_moe_baked_present():
    seed_all(1203)
    mod = Loop3D(skip_empty=True).eval()
    trace_x = torch.randn(1, MOE_H, generator=torch.Generator().manual_seed(2203))
    # do_constant_folding=False: with folding on, the legacy exporter folds Gather(W[E,..], e) into
    # one constant per traced expert and W itself disappears (the graph then looks exactly like the
    # ModuleList variant). Without folding the full [E, ...] tensors stay as initializers.
    m = torch_legacy_export(
        mod, (trace_x,), ["x"], ["y"], {"x": {0: "tokens"}, "y": {0: "tokens"}}, do_constant_folding=False
    )
    ds, traced = baked_datasets(mod, trace_x, torch.Generator().manual_seed(2204))
    full = [(i.name, list(i.dims)) for i in m.graph.initializer if list(i.dims)[:1] == [MOE_E] and len(i.dims) == 3]
    return Built(
        m,
        "torch.onnx.export(dynamo=False, do_constant_folding=False)",
        f"BAKED trace: MoE layer with 3-D expert parameters w_up [{MOE_E},{MOE_I},{MOE_H}] and w_down "
        f"[{MOE_E},{MOE_H},{MOE_I}] indexed per expert, `for e in range(E): ... if tok.numel() == 0: continue`, "
        "traced on ONE token",
        ds,
        dynamic="tokens",
        notes=[
            f"experts the trace kept: {traced} of {list(range(MOE_E))}",
            f"full expert weight tensors still in the graph: {full}",
        ],
    )


@builder("moe_baked_weights_missing", "MoE layers (per-expert loop)")
def build_moe_baked_missing():
    seed_all(1204)
    mod = LoopModuleList(skip_empty=True).eval()
    trace_x = torch.randn(1, MOE_H, generator=torch.Generator().manual_seed(2203))
    m = torch_legacy_export(mod, (trace_x,), ["x"], ["y"], {"x": {0: "tokens"}, "y": {0: "tokens"}})
    ds, traced = baked_datasets(mod, trace_x, torch.Generator().manual_seed(2204))
    n_w = sum(1 for i in m.graph.initializer if len(i.dims) == 2 and sorted(i.dims) == sorted([MOE_H, MOE_I]))
    return Built(
        m,
        "torch.onnx.export(dynamo=False)",
        f"BAKED trace: MoE layer with a per-expert nn.ModuleList of Linear layers, `if tok.numel() == 0: continue`, "
        "traced on ONE token",
        ds,
        dynamic="tokens",
        notes=[
            f"experts the trace kept: {traced} of {list(range(MOE_E))}",
            f"expert weight matrices in the graph: {n_w} (2 per kept expert; the other experts' weights are gone)",
        ],
    )


# --------------------------------------------------------------------------------------------
# 6. Gemm from 2-D linear layers
# --------------------------------------------------------------------------------------------


class GemmMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = torch.nn.Linear(12, 24)
        self.l2 = torch.nn.Linear(24, 24, bias=False)
        self.l3 = torch.nn.Linear(24, 6)
        self.w4 = torch.nn.Parameter(torch.randn(6, 5) * 0.3)
        self.register_buffer("c4", torch.randn(5))
        self.w5 = torch.nn.Parameter(torch.randn(5, 5) * 0.3)

    def forward(self, x):
        h = torch.relu(self.l1(x))  # Linear with bias
        h = torch.tanh(self.l2(h))  # Linear without bias
        h = self.l3(h)
        h = torch.addmm(self.c4, h, self.w4, beta=0.5, alpha=2.0)  # alpha/beta, bias [N]
        h = torch.addmm(h, h, self.w5.t())  # runtime C [M,N], transposed constant B
        return h


GEMM_DESC = (
    "MLP on [batch,12]: Linear(12,24)+ReLU, Linear(24,24,bias=False)+Tanh, Linear(24,6), "
    "addmm(c[5], h, W[6,5], beta=0.5, alpha=2), addmm(h, h, W5.t())"
)


def gemm_datasets(mod):
    gen = torch.Generator().manual_seed(2301)
    out = []
    for b in [1, 2, 33]:
        x = torch.randn(b, 12, generator=gen)
        with torch.no_grad():
            ref = mod(x)
        out.append(DataSet([to_np(x)], flatten_outputs(ref), f"batch {b}"))
    return out


@builder("mlp_gemm_dynamo", "Gemm")
def build_gemm_dynamo():
    seed_all(1301)
    mod = GemmMLP().eval()
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(2300))
    m = torch_dynamo_export(mod, (x,), ["x"], ["y"], {"x": {0: torch.export.Dim("batch")}})
    return Built(m, "torch.onnx.export(dynamo=True)", GEMM_DESC, gemm_datasets(mod), dynamic="batch")


@builder("mlp_gemm_legacy", "Gemm")
def build_gemm_legacy():
    seed_all(1301)
    mod = GemmMLP().eval()
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(2300))
    m = torch_legacy_export(mod, (x,), ["x"], ["y"], {"x": {0: "batch"}, "y": {0: "batch"}})
    return Built(m, "torch.onnx.export(dynamo=False)", "same module and weights as mlp_gemm_dynamo", gemm_datasets(mod), dynamic="batch")


# --------------------------------------------------------------------------------------------
# Writing, verifying, reporting
# --------------------------------------------------------------------------------------------


def write_tensor(path: Path, arr: np.ndarray, name: str) -> None:
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name=name)
    path.write_bytes(t.SerializeToString())


def observe(model_path: Path, input_names, ds: DataSet) -> tuple[str, float, str]:
    """Run one data set on ORT CPU: ('match'|'mismatch'|'error', max abs diff, detail)."""
    try:
        got = run_ort(model_path, input_names, ds.inputs)
    except Exception as e:  # noqa: BLE001
        return "error", float("nan"), " ".join(str(e).split())[:300]
    ok, diff, why = compare(got, ds.outputs)
    return ("match" if ok else "mismatch"), diff, why


def process(name: str, built: Built, out_root: Path) -> dict:
    folder = out_root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model = normalize_model(built.model)
    model_path = folder / "model.onnx"
    model_path.write_bytes(model.SerializeToString())

    init_names = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in init_names]
    input_names = [i.name for i in graph_inputs]
    output_names = [o.name for o in model.graph.output]

    try:
        onnx.checker.check_model(str(model_path), full_check=True)
        checker = "ok"
    except Exception as e:  # noqa: BLE001
        checker = "fails: " + " ".join(str(e).split())[:200]

    ds_records = []
    unexpected = []
    for n, ds in enumerate(built.datasets):
        if len(ds.inputs) != len(input_names):
            raise RuntimeError(f"{name}: data set has {len(ds.inputs)} inputs, graph has {input_names}")
        if len(ds.outputs) != len(output_names):
            raise RuntimeError(f"{name}: data set has {len(ds.outputs)} outputs, graph has {output_names}")
        d = folder / f"test_data_set_{n}"
        d.mkdir()
        for i, (arr, nm) in enumerate(zip(ds.inputs, input_names)):
            write_tensor(d / f"input_{i}.pb", arr, nm)
        for i, (arr, nm) in enumerate(zip(ds.outputs, output_names)):
            write_tensor(d / f"output_{i}.pb", arr, nm)
        outcome, diff, detail = observe(model_path, input_names, ds)
        rec = {
            "dir": d.name,
            "note": ds.note,
            "expect": ds.expect,
            "reason": ds.reason,
            "observed": outcome,
            "max_abs_diff": None if diff != diff else diff,  # NaN -> null
            "detail": detail,
            "input_shapes": [list(a.shape) for a in ds.inputs],
        }
        ds_records.append(rec)
        if outcome != ds.expect:
            unexpected.append(f"{name}/{d.name}: expected {ds.expect}, observed {outcome} ({detail})")

    probe_records = []
    for p in built.probes:
        outcome, diff, detail = observe(model_path, input_names, DataSet(p.inputs, p.outputs, p.note))
        probe_records.append({"note": p.note, "observed": outcome, "max_abs_diff": None if diff != diff else diff})

    hist = op_histogram(model.graph)
    rec = {
        "name": name,
        "group": GROUPS[name],
        "exporter": built.exporter,
        "description": built.description,
        "opset_imports": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [f"{i.name}: {dims_of(i)}" for i in graph_inputs],
        "outputs": [f"{o.name}: {dims_of(o)}" for o in model.graph.output],
        "dynamic": built.dynamic,
        "nodes": sum(hist.values()),
        "op_histogram": dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "initializers": len(model.graph.initializer),
        "model_bytes": model_path.stat().st_size,
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "checker_full": checker,
        "datasets": ds_records,
        "probes": probe_records,
        "notes": built.notes,
    }
    return rec, unexpected


OPS_OF_NOTE = [
    "Gemm", "MatMul", "If", "Loop", "NonZero", "ScatterND", "ScatterElements", "GatherND", "TopK",
    "Split", "CumSum", "Cos", "Sin", "Range", "Shape", "com.microsoft::MoE",
]


def ops_of_note(hist: dict) -> str:
    parts = [f"{k} {hist[k]}" for k in OPS_OF_NOTE if hist.get(k)]
    parts += [f"{k} {v}" for k, v in hist.items() if "::" in k and k not in OPS_OF_NOTE]
    return ", ".join(parts)


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for p in ["torch", "transformers", "onnx", "onnxruntime", "onnxscript", "onnx-ir", "numpy"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "absent"
    return out


def write_readme(out_root: Path, manifest: dict) -> None:
    v = manifest["versions"]
    L = []
    L.append("# testdata/models: tiny real exports\n")
    L.append(
        "Generated by `make_models.py` (the tables and numbers below are written by the script from what it "
        "observed; edit the script, not this file). Random weights from configs, fixed seeds, no downloads. "
        "`check_models.py` replays every data set on onnxruntime CPU with only onnx, onnxruntime and numpy.\n"
    )
    L.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".\n")
    L.append(
        "Layout per model: `<name>/model.onnx` (weights inline) and `<name>/test_data_set_<n>/input_<i>.pb`, "
        "`output_<i>.pb` (TensorProto, named after the graph's inputs/outputs, as in ONNX's backend tests). "
        "Outputs are PyTorch's, never onnxruntime's. `manifest.json` lists each data set with what it exercises and "
        f"what onnxruntime CPU is expected to do with it (`match` within rtol {RTOL:g} / atol {ATOL:g}, `mismatch`, "
        "or `error`).\n"
    )
    L.append(
        "Node metadata is kept as the exporters wrote it (`namespace`, `pkg.torch.onnx.class_hierarchy`, "
        "`pkg.torch.onnx.fx_node`, `pkg.torch.onnx.name_scopes`, `pkg.onnxscript.rewriter.rule_name`), except "
        "`pkg.torch.onnx.stack_trace`, which is dropped (a third of the bytes, and absolute paths of the machine "
        "that exported), and machine-specific path prefixes, which are rewritten (`<site-packages>/`, "
        "repository-relative), so the files do not depend on where the script ran.\n"
    )
    L.append("## Models\n")
    L.append("| model | exporter | opset | size | nodes | ops of note | inputs (dynamic dims) | data sets | checker |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in manifest["models"]:
        opset = ", ".join(f"{d} {ver}" if d != "ai.onnx" else str(ver) for d, ver in r["opset_imports"].items())
        ds = r["datasets"]
        n_match = sum(1 for d in ds if d["observed"] == "match")
        ds_txt = f"{len(ds)} ({n_match} match"
        others = collections.Counter(d["observed"] for d in ds if d["observed"] != "match")
        for k, c in sorted(others.items()):
            ds_txt += f", {c} {k}"
        ds_txt += ")"
        L.append(
            f"| `{r['name']}` | {r['exporter']} | {opset} | {r['model_bytes'] / 1024:.0f} KiB | {r['nodes']} | "
            f"{ops_of_note(r['op_histogram'])} | {'<br>'.join(r['inputs'])} | {ds_txt} | {r['checker_full']} |"
        )
    L.append("")
    if manifest["failures"]:
        L.append("## Export failures\n")
        L.append("| model | error |")
        L.append("|---|---|")
        for f in manifest["failures"]:
            L.append(f"| `{f['name']}` | `{f['error'].replace('|', '/')}` |")
        L.append("")
    L.append("## Per model\n")
    for r in manifest["models"]:
        L.append(f"### `{r['name']}`\n")
        L.append(f"{r['description']}. Exporter: {r['exporter']}; producer {r['producer']}; IR version {r['ir_version']}.\n")
        L.append("- inputs: " + "; ".join(f"`{x}`" for x in r["inputs"]))
        L.append("- outputs: " + "; ".join(f"`{x}`" for x in r["outputs"]))
        for note in r["notes"]:
            L.append(f"- {note}")
        L.append("- op histogram: " + ", ".join(f"{k} {c}" for k, c in r["op_histogram"].items()))
        L.append("- data sets:")
        for d in r["datasets"]:
            diff = "n/a" if d["max_abs_diff"] is None else f"{d['max_abs_diff']:.3g}"
            line = f"  - `{d['dir']}`: {d['note']}; ORT CPU: **{d['observed']}** (max abs diff {diff})"
            if d["expect"] != "match":
                line += f"; expected {d['expect']}: {d['reason']}"
            if d["observed"] == "error":
                line += f"; error: `{d['detail']}`"
            L.append(line)
        for p in r["probes"]:
            diff = "n/a" if p["max_abs_diff"] is None else f"{p['max_abs_diff']:.3g}"
            L.append(f"- probe (not stored): {p['note']}; ORT CPU vs PyTorch: **{p['observed']}** (max abs diff {diff})")
        L.append("")
    L.append(NARRATIVE)
    (out_root / "README.md").write_text("\n".join(L) + "\n")


NARRATIVE = """## What the pass writers should know

- **Baked traces** (`moe_baked_weights_present`, `moe_baked_weights_missing`): traced on one token, with
  `if tok.numel() == 0: continue`, so only the experts that token reached are in the graph. Each data set above
  says which experts it routes to; the script predicts `mismatch` exactly when a token reaches an expert the trace
  dropped, and checks that onnxruntime agrees with the prediction. The kept experts still read their tokens
  through `NonZero`, so any input whose tokens all route to kept experts (any token count) is computed correctly;
  every other input is silently wrong (no runtime error).
  - `moe_baked_weights_present` keeps the full 3-D `[E, ...]` weight tensors as initializers, read per expert by
    `Gather(W, Constant e, axis=0)` + `Transpose`: the missing experts can be rebuilt from them. It is exported
    with `do_constant_folding=False`, because with folding on the legacy exporter folds each `Gather(W, e)` into
    its own pre-transposed 2-D constant and drops `W` (the graph is then the same as the ModuleList variant).
  - `moe_baked_weights_missing` holds only the kept experts' matrices: nothing in the graph can rebuild the rest
    (moe-dense must refuse it).
- **Complete per-expert loops**: `moe_loop_legacy` has, per expert, `Equal` → `NonZero` → `Transpose` → `Split`
  → `Gather` (tokens) → `MatMul` ×2 → `ScatterElements` + `Add` (index_add_); `moe_loop_dynamo` has `NonZero` →
  `GatherND` → `Gemm` ×2 → `ScatterND(reduction="add")`. `cond_moe_experts` has the same expert body inside one
  `If` per expert (else-branch: `Identity`).
- **transformers' OnnxExporter**: the default form (`grouped_mm` experts) exports, through the exporter's own
  translation of `transformers::grouped_mm_fallback`: tokens sorted by expert, `CumSum` group offsets, the 3-D
  expert weights `Split` into E pieces at run time, then per expert `Range(start, end)` → `Gather` rows →
  `MatMul`, and a `Concat` (E `MatMul`s per projection, unrolled); `batched_mm` gives `GatherND` on the 3-D
  expert weights indexed by the top-k ids + batched `MatMul`; the eager experts loop does not export (table
  above). Its dynamic dims come out as torch.export's symbols (`s43`, `s53`), not the
  names of the `Dim`s passed in. The router (and Qwen2-MoE's shared expert) is a 2-D `Gemm` on the flattened
  tokens, so gemm-to-matmul applies to these graphs too.
- **CUDA-fusion MoE models** (`*_hf_cuda_fusion`): besides `com.microsoft.MoE` (fed the router logits, with
  separate `fc3` up-projection weights), the fusion also emits `MultiHeadAttention`, `RotaryEmbedding` and
  `SkipSimplifiedLayerNormalization` (com.microsoft) and `SimplifiedLayerNormalization` in the default domain,
  which `onnx.checker` (full check) rejects (checker column): a pass cannot require its input to pass the
  checker. ONNX Runtime's CPU MoE kernel refuses `fc3`, so these do not run on CPU; their reference outputs come
  from PyTorch (`batched_mm` experts) and `check_models.py` reports them as expected failures.
- **Fully masked attention rows**: the probes show whether a query row whose every key is masked (left padding
  in Llama, a sliding window over padding in ModernBERT) comes out of onnxruntime as it does from PyTorch. Such
  rows are kept out of the stored data sets, so every stored data set matches.
- **Legacy vs dynamo**: the legacy exporter keeps many `Constant` nodes and per-layer `Shape`/`Gather`/`Unsqueeze`
  chains (IR version 9); the dynamo exporter (IR version 10) runs onnxscript's optimizer, so the same model has far
  fewer nodes; dynamo turns 2-D linear layers into `Gemm` (bias or not), while the
  legacy exporter emits `Gemm` only for a Linear with bias and `MatMul` for one without.
"""


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
    ap.add_argument("names", nargs="*", help="models to (re)build; default: all")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    ap.add_argument("--allow-other-versions", action="store_true")
    ap.add_argument("--list", action="store_true", help="list the model names and exit")
    args = ap.parse_args()
    if args.list:
        for n in BUILDERS:
            print(n)
        return 0
    check_versions(args.allow_other_versions)
    names = args.names or list(BUILDERS)
    for n in names:
        if n not in BUILDERS:
            sys.exit(f"unknown model {n!r}; see --list")
    out_root = args.out.resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    manifest_path = out_root / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() and args.names else None
    models: dict[str, dict] = {}
    failures: dict[str, dict] = {}
    if old:
        models = {m["name"]: m for m in old.get("models", [])}
        failures = {f["name"]: f for f in old.get("failures", [])}

    all_unexpected = []
    for name in names:
        print(f"== {name}", flush=True)
        models.pop(name, None)
        failures.pop(name, None)
        try:
            built = BUILDERS[name]()
        except Exception as e:  # noqa: BLE001 - an exporter path that fails is recorded, then we move on
            err = str(e) if isinstance(e, ExportFailure) else short_error(e)
            if not isinstance(e, ExportFailure):
                traceback.print_exc()
            print(f"   EXPORT FAILED: {err}", flush=True)
            failures[name] = {"name": name, "group": GROUPS[name], "error": err}
            folder = out_root / name
            if folder.exists():
                shutil.rmtree(folder)
            continue
        rec, unexpected = process(name, built, out_root)
        models[name] = rec
        all_unexpected += unexpected
        print(f"   {rec['model_bytes'] / 1024:.0f} KiB, {rec['nodes']} nodes: {ops_of_note(rec['op_histogram'])}")
        for d in rec["datasets"]:
            diff = "n/a" if d["max_abs_diff"] is None else f"{d['max_abs_diff']:.3g}"
            flag = "" if d["observed"] == d["expect"] else "   <-- UNEXPECTED"
            print(f"   {d['dir']}: {d['observed']} (expected {d['expect']}, max abs diff {diff}) {d['note']}{flag}")
        for p in rec["probes"]:
            diff = "n/a" if p["max_abs_diff"] is None else f"{p['max_abs_diff']:.3g}"
            print(f"   probe: {p['observed']} (max abs diff {diff}) {p['note']}")

    order = list(BUILDERS)
    manifest = {
        "generated_by": "testdata/models/make_models.py",
        "versions": versions(),
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "models": [models[n] for n in order if n in models],
        "failures": [failures[n] for n in order if n in failures],
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    write_readme(out_root, manifest)
    total = sum(p.stat().st_size for p in out_root.rglob("*") if p.is_file())
    print(f"total size of {out_root}: {total / 1e6:.2f} MB")
    if manifest["failures"]:
        print("export failures:")
        for f in manifest["failures"]:
            print(f"  {f['name']}: {f['error']}")
    if all_unexpected:
        print("UNEXPECTED outcomes:")
        for u in all_unexpected:
            print("  " + u)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
