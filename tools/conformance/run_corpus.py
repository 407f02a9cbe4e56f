#!/usr/bin/env python3
"""Run onnx-rewrite over the ONNX node-test corpus and check nothing regresses.

For every case (in parallel):

* baseline: the original model runs on onnxruntime (CPU, graph optimizations
  disabled) and is compared with the expected outputs by onnx's own backend-test
  rules; the pass/fail result is cached per (onnx, onnxruntime, numpy) version;
* for every ``--passes`` list: ``TOOL apply model.onnx -o out.onnx --passes LIST``,
  ``onnx.checker.check_model(out, full_check=True)``, the output runs on
  onnxruntime and is compared (see README.md for the tolerance policy), and with
  ``--idempotence`` the output is rewritten again and must come back byte-identical;
* for the original and every output, what users' tools ask (tools/common/deployable.py):
  loading and running with onnxruntime's default session options, and onnx's strict
  shape inference with data propagation. A check the original passes and an output
  fails is a regression.

Exit status: 0 no regression, 1 at least one regression, 2 bad usage or corpus,
3 the harness itself failed on some case (a bug here, traceback printed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import dataclasses
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports happen in the worker processes only
    import numpy as np
    import onnx
    import onnxruntime

CORPUS_STAMP = ".corpus-stamp"
REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools" / "common"))
import deployable  # noqa: E402 - found through the path set above
DEFAULT_CORPUS = REPO_ROOT / "target" / "corpus"
DEFAULT_BASELINE_CACHE_NAME = ".baseline-cache.json"


# --------------------------------------------------------------------------- tolerances


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def tighter(self, other: Tolerance) -> Tolerance:
        return Tolerance(min(self.rtol, other.rtol), min(self.atol, other.atol))

    def looser(self, other: Tolerance) -> Tolerance:
        return Tolerance(max(self.rtol, other.rtol), max(self.atol, other.atol))

    def __str__(self) -> str:
        return f"rtol={self.rtol:g} atol={self.atol:g}"


# onnx's TestCase default for every node case (onnx/backend/test/case/node/__init__.py).
DEFAULT_CASE_TOLERANCE = Tolerance(rtol=1e-3, atol=1e-7)

# Per-case overrides that onnx's own backend tests pass as test_kwargs
# (onnx/test/test_backend_reference.py, Linux values). Partial: unset fields keep
# the default.
CASE_TOLERANCE_OVERRIDES: dict[str, dict[str, float]] = {
    "test_dft": {"atol": 1e-6},
    "test_dft_axis": {"atol": 1e-6},
    "test_dft_axis_opset19": {"atol": 1e-6},
    "test_dft_inverse": {"atol": 1e-6},
    "test_dft_inverse_opset19": {"atol": 1e-6},
    "test_dft_opset19": {"atol": 1e-6},
    "test_celu_bfloat16_expanded": {"rtol": 1e-2, "atol": 1e-2},
}

# DESIGN.md "Tolerances" table.
EXACT_PASS_ROW = Tolerance(rtol=1e-5, atol=1e-6)
PASS_ROWS: dict[str, Tolerance] = {
    "none": EXACT_PASS_ROW,
    "egraph": EXACT_PASS_ROW,
    "gemm-to-matmul": EXACT_PASS_ROW,
    "lower-if": EXACT_PASS_ROW,
    "inline-functions": EXACT_PASS_ROW,
    "hoist-scalars": EXACT_PASS_ROW,
    "moe-dense": Tolerance(rtol=1e-4, atol=1e-5),
}
LOW_PRECISION_ROWS: dict[str, Tolerance] = {
    "fp16": Tolerance(rtol=2e-2, atol=2e-2),
    "bf16": Tolerance(rtol=5e-2, atol=5e-2),
}
ALL_PASSES = ("inline-functions", "gemm-to-matmul", "lower-if", "fp16", "moe-dense", "hoist-scalars")


def case_tolerance(name: str) -> Tolerance:
    override = CASE_TOLERANCE_OVERRIDES.get(name, {})
    return dataclasses.replace(DEFAULT_CASE_TOLERANCE, **override)


# --------------------------------------------------------------------------- pass specs


@dataclass(frozen=True)
class PassSpec:
    """One ``--passes`` argument: a pass list plus optional extra apply flags."""

    text: str  # as given on the command line
    passes: str  # the value given to the tool's --passes
    extra_args: tuple[str, ...]
    low_precision: str | None  # "fp16" / "bf16" when the list converts precision
    row: Tolerance
    unknown_passes: tuple[str, ...]


def parse_pass_spec(text: str) -> PassSpec:
    """``"gemm-to-matmul,lower-if"`` or ``"fp16 --fp16-type bfloat16"``."""
    words = shlex.split(text)
    if not words:
        raise ValueError("empty --passes value")
    passes, extra = words[0], tuple(words[1:])
    names = [p for p in passes.split(",") if p]
    if "all" in names:
        names = [n for n in names if n != "all"] + list(ALL_PASSES)
    low_precision = None
    if "fp16" in names:
        low_precision = "bf16" if fp16_type(extra) in ("bf16", "bfloat16") else "fp16"
    unknown = tuple(n for n in names if n not in PASS_ROWS and n != "fp16")
    if low_precision is not None:
        row = LOW_PRECISION_ROWS[low_precision]
    else:
        row = EXACT_PASS_ROW
        for name in names:
            row = row.looser(PASS_ROWS.get(name, EXACT_PASS_ROW))
    return PassSpec(text, passes, extra, low_precision, row, unknown)


def fp16_type(extra: tuple[str, ...]) -> str | None:
    """The value of the fp16 pass's `--fp16-type` flag (float16|bfloat16)."""
    for i, word in enumerate(extra):
        if word.startswith("--fp16-type="):
            return word.split("=", 1)[1]
        if word == "--fp16-type" and i + 1 < len(extra):
            return extra[i + 1]
    return None


# --------------------------------------------------------------------------- results


@dataclass
class Baseline:
    """What the original model does; cached across runs."""

    ort_pass: bool
    category: str = ""  # why it fails: ort-load / ort-run / mismatch / data-load
    reason: str = ""
    checker_ok: bool = True
    checker_error: str = ""
    deterministic: bool = True  # two ORT runs gave identical outputs
    # deployable.py's checks on the original: None when they succeed, else why not (a baseline
    # made without running them holds no promise to keep).
    default_session: str | None = "not checked"
    strict_inference: str | None = "not checked"


@dataclass
class PassOutcome:
    status: str  # ok | not-compared | declined | unchecked | regression
    kind: str = ""  # for regressions: tool-exit, tool-timeout, checker, ort-load, ...
    reason: str = ""
    checker_failed: bool = False


@dataclass
class CaseJob:
    name: str
    case_dir: str
    tool: str
    specs: list[PassSpec]
    baseline: Baseline | None
    idempotence: bool
    timeout: float
    tmp_root: str | None
    forbidden: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pass text -> op types


@dataclass
class CaseOutcome:
    name: str
    baseline: Baseline
    baseline_from_cache: bool
    results: list[PassOutcome] = field(default_factory=list)
    harness_error: str = ""


# --------------------------------------------------------------------------- data loading


def load_value(path: Path, type_proto: onnx.TypeProto) -> Any:
    """Read one input_/output_ .pb file the way onnx's backend runner does (+ maps)."""
    import onnx
    from onnx import numpy_helper

    data = path.read_bytes()
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        tensor = onnx.TensorProto()
        tensor.ParseFromString(data)
        return numpy_helper.to_array(tensor)
    if kind == "sequence_type":
        seq = onnx.SequenceProto()
        seq.ParseFromString(data)
        return numpy_helper.to_list(seq)
    if kind == "optional_type":
        opt = onnx.OptionalProto()
        opt.ParseFromString(data)
        return numpy_helper.to_optional(opt)
    if kind == "map_type":
        mp = onnx.MapProto()
        mp.ParseFromString(data)
        return numpy_helper.to_dict(mp)
    raise ValueError(f"{path.name}: unsupported value type {kind!r}")


DataSet = tuple[dict[str, Any], list[Any]]  # feeds by input name, expected outputs


def load_data_sets(case_dir: Path, model: onnx.ModelProto) -> list[DataSet]:
    data_sets: list[DataSet] = []
    for data_dir in sorted(case_dir.glob("test_data_set_*")):
        n_in = len(list(data_dir.glob("input_*.pb")))
        n_out = len(list(data_dir.glob("output_*.pb")))
        feeds = {}
        for i in range(n_in):
            vi = model.graph.input[i]
            feeds[vi.name] = load_value(data_dir / f"input_{i}.pb", vi.type)
        expected = [load_value(data_dir / f"output_{i}.pb", model.graph.output[i].type) for i in range(n_out)]
        data_sets.append((feeds, expected))
    if not data_sets:
        raise ValueError("no test_data_set_* directory")
    return data_sets


# --------------------------------------------------------------------------- onnxruntime


def make_session(model_path: Path) -> onnxruntime.InferenceSession:
    """CPU session with ORT's graph optimizations off, so its rewrites do not mask ours."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 4  # failures reach us as exceptions
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


# Element types numpy has no native dtype for (onnx maps them to ml_dtypes): ORT's
# Python binding neither takes nor returns them as arrays, so they go through
# OrtValue with the raw bytes onnx's numpy_helper packs and unpacks.
RAW_IO_TYPES = frozenset(
    {
        "bfloat16",
        "float8e4m3fn",
        "float8e4m3fnuz",
        "float8e5m2",
        "float8e5m2fnuz",
        "float8e8m0",
        "float4e2m1",
        "int4",
        "uint4",
        "int2",
        "uint2",
    }
)
LOW_PRECISION_INPUT_TYPES = {"tensor(float16)": 10, "tensor(bfloat16)": 16}  # onnx TensorProto enum


def element_type_name(ort_type: str) -> str:
    """'tensor(bfloat16)' -> 'bfloat16'; '' for sequences, optionals, maps."""
    match = re.fullmatch(r"tensor\((\w+)\)", ort_type)
    return match.group(1) if match else ""


def adapt_feeds(session: onnxruntime.InferenceSession, feeds: dict[str, Any]) -> dict[str, Any]:
    """Cast float32 inputs to the float16/bfloat16 a converted model declares."""
    import numpy as np
    from onnx import helper

    declared = {i.name: i.type for i in session.get_inputs()}
    adapted = {}
    for name, value in feeds.items():
        target = LOW_PRECISION_INPUT_TYPES.get(declared.get(name, ""))
        if target is not None and isinstance(value, np.ndarray) and value.dtype == np.float32:
            with np.errstate(over="ignore"):  # out-of-range inputs become inf, as for users
                adapted[name] = value.astype(helper.tensor_dtype_to_np_dtype(target))
        else:
            adapted[name] = value
    return adapted


class HarnessLimitation(Exception):
    """A value this harness cannot pass to or take from ORT (not a fault of the model)."""


def has_raw_io_output(session: onnxruntime.InferenceSession) -> bool:
    return any(element_type_name(o.type) in RAW_IO_TYPES for o in session.get_outputs())


def to_ortvalue(value: np.ndarray) -> onnxruntime.OrtValue:
    import onnxruntime as ort
    from onnx import numpy_helper

    tensor = numpy_helper.from_array(value)
    if not tensor.HasField("raw_data"):
        return ort.OrtValue.ortvalue_from_numpy(value)
    ortvalue = ort.OrtValue.ortvalue_from_shape_and_type(list(value.shape), tensor.data_type)
    if ortvalue.tensor_size_in_bytes() != len(tensor.raw_data):
        raise ValueError(
            f"{value.dtype}{list(value.shape)}: ORT wants {ortvalue.tensor_size_in_bytes()} bytes, "
            f"onnx packs {len(tensor.raw_data)}"
        )
    ctypes.memmove(ortvalue.data_ptr(), tensor.raw_data, len(tensor.raw_data))
    return ortvalue


def from_ortvalue(ortvalue: onnxruntime.OrtValue) -> Any:
    import onnx
    from onnx import numpy_helper

    if not ortvalue.is_tensor():
        raise HarnessLimitation(f"non-tensor output {ortvalue.data_type()} beside a raw-typed output")
    if element_type_name(ortvalue.data_type()) not in RAW_IO_TYPES:
        return ortvalue.numpy()
    raw = ctypes.string_at(ortvalue.data_ptr(), ortvalue.tensor_size_in_bytes())
    tensor = onnx.helper.make_tensor("", ortvalue.element_type(), ortvalue.shape(), raw, raw=True)
    return numpy_helper.to_array(tensor)


def run_session(
    session: onnxruntime.InferenceSession, feeds: dict[str, Any], output_names: list[str]
) -> list[Any]:
    """Run like onnx's backend runner; bfloat16/float8/int4... tensors go through OrtValue."""
    import numpy as np

    # An empty optional input is fed by leaving it out.
    present = {k: v for k, v in feeds.items() if v is not None}
    if not has_raw_io_output(session):
        # session.run takes OrtValues beside arrays and lists.
        prepared = {
            k: to_ortvalue(v) if isinstance(v, np.ndarray) and is_ml_dtype(v.dtype) else v
            for k, v in present.items()
        }
        return list(session.run(output_names, prepared))
    # Outputs numpy cannot hold need run_with_ort_values, which takes tensors only.
    non_tensors = [k for k, v in present.items() if not isinstance(v, np.ndarray)]
    if non_tensors:
        raise HarnessLimitation(
            f"sequence/optional inputs {non_tensors} with a bfloat16/float8/int4-like output"
        )
    ortvalues = {k: to_ortvalue(v) for k, v in present.items()}
    return [from_ortvalue(v) for v in session.run_with_ort_values(output_names, ortvalues)]


def short_error(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class CompareMode:
    tol: Tolerance
    exact_non_float: bool = False  # ints/bools must be equal (rewrite vs original)
    allow_low_precision: bool = False  # fp16/bf16 output may stand in for float32
    onnx_bfloat16_rule: bool = True  # onnx's runner: rtol >= 2**-6 for bfloat16


def is_ml_dtype(dtype: np.dtype) -> bool:
    """ml_dtypes types (bfloat16, float8*, int4...) that numpy cannot promote."""
    # Not dtype.kind: ml_dtypes reports "V" for most of them but "f" for float8_e5m2.
    return dtype.type.__module__.startswith("ml_dtypes")


def comparable(arr: np.ndarray) -> np.ndarray:
    import numpy as np

    if is_ml_dtype(arr.dtype) or arr.dtype == np.float16:
        return arr.astype(np.float32)
    return arr


def compare_values(expected: Any, actual: Any, mode: CompareMode, where: str) -> str | None:
    """None when equal within tolerance, else a one-line description of the first problem."""
    import numpy as np

    if expected is None or actual is None:
        if expected is None and actual is None:
            return None
        want = "empty" if expected is None else "a value"
        got = "empty" if actual is None else "a value"
        return f"{where}: expected {want} optional, got {got}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            return f"{where}: map keys differ"
        for key in sorted(expected):
            problem = compare_values(expected[key], actual[key], mode, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            return f"{where}: expected a sequence, got {type(actual).__name__}"
        if len(actual) != len(expected):
            return f"{where}: sequence length {len(actual)}, expected {len(expected)}"
        for j, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problem = compare_values(e, a, mode, f"{where}[{j}]")
            if problem:
                return problem
        return None
    if not isinstance(actual, np.ndarray):
        return f"{where}: expected a tensor, got {type(actual).__name__}"
    return compare_arrays(np.asarray(expected), actual, mode, where)


def compare_arrays(expected: np.ndarray, actual: np.ndarray, mode: CompareMode, where: str) -> str | None:
    import numpy as np

    if actual.shape != expected.shape:
        return f"{where}: shape {list(actual.shape)}, expected {list(expected.shape)}"
    if object in (expected.dtype, actual.dtype):
        return compare_strings(expected, actual, where)
    if actual.dtype != expected.dtype and not low_precision_stand_in(expected, actual, mode):
        return f"{where}: dtype {actual.dtype}, expected {expected.dtype}"
    tol = mode.tol
    if mode.onnx_bfloat16_rule and "bfloat16" in (actual.dtype.name, expected.dtype.name):
        tol = Tolerance(max(tol.rtol, 2**-6), tol.atol)
    exp, act = comparable(expected), comparable(actual)
    exact = mode.exact_non_float and exp.dtype.kind in "biuS"
    if exact:
        bad = exp != act
    else:
        exp64 = exp.astype(np.float64)
        act64 = act.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(act64 - exp64)
            allowed = tol.atol + tol.rtol * np.abs(exp64)
            ok = (diff <= allowed) | (np.isnan(exp64) & np.isnan(act64)) | (exp64 == act64)
        bad = ~ok
    if not np.any(bad):
        return None
    return describe_mismatch(exp, act, bad, where, "exact" if exact else str(tol))


def compare_strings(expected: np.ndarray, actual: np.ndarray, where: str) -> str | None:
    import numpy as np

    if expected.dtype != actual.dtype:
        return f"{where}: dtype {actual.dtype}, expected {expected.dtype}"
    bad = expected != actual
    if not np.any(bad):
        return None
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"{where}: {int(bad.sum())}/{bad.size} strings differ, first at {list(idx)}: "
        f"got {actual[idx]!r} want {expected[idx]!r}"
    )


def low_precision_stand_in(expected: np.ndarray, actual: np.ndarray, mode: CompareMode) -> bool:
    return (
        mode.allow_low_precision
        and expected.dtype.name == "float32"
        and actual.dtype.name in ("float16", "bfloat16")
    )


def describe_mismatch(exp: np.ndarray, act: np.ndarray, bad: np.ndarray, where: str, tol: str) -> str:
    import numpy as np

    exp64 = exp.astype(np.float64)
    act64 = act.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(bad, np.abs(act64 - exp64), -1.0)
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN against a number: worst
    flat = int(np.argmax(diff))
    idx = tuple(int(i) for i in np.unravel_index(flat, bad.shape)) if bad.ndim else ()
    got, want = float(act[idx]), float(exp[idx])
    return (
        f"{where}: {int(bad.sum())}/{bad.size} elements off ({tol}), worst at {list(idx)}: "
        f"got {got:.8g} want {want:.8g} (|diff| {abs(got - want):.3g})"
    )


def compare_outputs(
    expected: list[Any], actual: list[Any], names: list[str], mode: CompareMode
) -> str | None:
    if len(actual) != len(expected):
        return f"{len(actual)} outputs, expected {len(expected)}"
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        problem = compare_values(e, a, mode, f"output {i} {names[i]!r}")
        if problem:
            return problem
    return None


# --------------------------------------------------------------------------- checker / tool


def check_model(path: Path) -> str:
    """'' when onnx.checker (full check) accepts the model, else its error."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return short_error(exc)
    return ""


@dataclass
class ToolRun:
    returncode: int | None  # None: timed out
    stderr_head: str


def run_tool(job: CaseJob, spec: PassSpec, src: Path, dst: Path) -> ToolRun:
    cmd = [job.tool, "apply", str(src), "-o", str(dst), "--passes", spec.passes, *spec.extra_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=job.timeout, check=False)
    except subprocess.TimeoutExpired:
        return ToolRun(None, f"timed out after {job.timeout:g}s")
    stderr = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    head = " | ".join(line.strip() for line in stderr[:3])
    return ToolRun(proc.returncode, head[:300])


def tool_failure(run: ToolRun) -> PassOutcome:
    if run.returncode is None:
        return PassOutcome("regression", "tool-timeout", run.stderr_head)
    if run.returncode < 0:
        status = f"killed by {signal.Signals(-run.returncode).name}"
    else:
        status = f"exit {run.returncode}"
    return PassOutcome("regression", "tool-exit", f"{status}: {run.stderr_head or '(no stderr)'}")


# --------------------------------------------------------------------------- per case


@dataclass
class CaseData:
    model_path: Path
    model: onnx.ModelProto
    data_sets: list[DataSet]
    output_names: list[str]
    tol: Tolerance
    ort_io: tuple[list[str], list[str]] | None = None  # the original's inputs/outputs as ORT sees them


def session_io(session: onnxruntime.InferenceSession) -> tuple[list[str], list[str]]:
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def io_problem(original: tuple[list[str], list[str]], session: onnxruntime.InferenceSession) -> str | None:
    """Graph inputs and outputs must keep their names and order."""
    rewritten = session_io(session)
    for what, before, after in zip(("inputs", "outputs"), original, rewritten, strict=True):
        if before != after:
            return f"graph {what} changed: {before} -> {after}"
    return None


def run_datasets(case: CaseData):
    """Runs every data set through a session (feeds adapted as for the comparison): what
    deployable.py's default-session check runs."""

    def run_all(session: onnxruntime.InferenceSession) -> None:
        for feeds, _ in case.data_sets:
            try:
                run_session(session, adapt_feeds(session, feeds), case.output_names)
            except HarnessLimitation:
                return  # a value the harness cannot exchange says nothing of the model

    return run_all


def compute_baseline(case: CaseData) -> tuple[Baseline, list[list[Any]] | None]:
    """Run the original on ORT; returns the baseline and ORT's outputs when it passes."""
    checker_error = check_model(case.model_path)
    deploy = deployable.deployability(case.model_path, run_datasets(case))
    base = Baseline(
        ort_pass=False,
        checker_ok=not checker_error,
        checker_error=checker_error,
        default_session=deploy.default_session,
        strict_inference=deploy.strict_inference,
    )
    try:
        session = make_session(case.model_path)
    except Exception as exc:  # noqa: BLE001 - ORT raises many types; recorded as the reason
        base.category, base.reason = "ort-load", short_error(exc)
        return base, None
    case.ort_io = session_io(session)
    outputs: list[list[Any]] = []
    mode = CompareMode(case.tol)
    for feeds, expected in case.data_sets:
        try:
            actual = run_session(session, feeds, case.output_names)
        except HarnessLimitation as exc:
            base.category, base.reason = "harness-limit", str(exc)
            return base, None
        except Exception as exc:  # noqa: BLE001 - recorded as the reason
            base.category, base.reason = "ort-run", short_error(exc)
            return base, None
        problem = compare_outputs(expected, actual, case.output_names, mode)
        if problem:
            base.category, base.reason = "mismatch", problem
            return base, None
        outputs.append(actual)
    base.ort_pass = True
    base.deterministic = reference_is_deterministic(session, case, outputs)
    return base, outputs


def reference_is_deterministic(
    session: onnxruntime.InferenceSession, case: CaseData, outputs: list[list[Any]]
) -> bool:
    exact = CompareMode(Tolerance(0.0, 0.0), exact_non_float=True, onnx_bfloat16_rule=False)
    for (feeds, _), first in zip(case.data_sets, outputs, strict=True):
        again = run_session(session, feeds, case.output_names)
        if compare_outputs(first, again, case.output_names, exact):
            return False
    return True


def reference_outputs(case: CaseData) -> list[list[Any]]:
    session = make_session(case.model_path)
    case.ort_io = session_io(session)
    return [run_session(session, feeds, case.output_names) for feeds, _ in case.data_sets]


def check_rewritten(
    case: CaseData, spec: PassSpec, base: Baseline, reference: list[list[Any]], out_path: Path
) -> PassOutcome | None:
    """Run the rewritten model on ORT and compare; None when it still passes."""
    try:
        session = make_session(out_path)
    except Exception as exc:  # noqa: BLE001 - recorded as the reason
        return PassOutcome("regression", "ort-load", short_error(exc))
    if case.ort_io is not None:
        problem = io_problem(case.ort_io, session)
        if problem:
            return PassOutcome("regression", "graph-io", problem)
    for (feeds, expected), ref in zip(case.data_sets, reference, strict=True):
        try:
            actual = run_session(session, adapt_feeds(session, feeds), case.output_names)
        except HarnessLimitation as exc:
            return PassOutcome("unchecked", "harness-limit", str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded as the reason
            return PassOutcome("regression", "ort-run", short_error(exc))
        if spec.low_precision:
            mode = CompareMode(spec.row, allow_low_precision=True, onnx_bfloat16_rule=False)
            problem = compare_outputs(ref, actual, case.output_names, mode)
            if problem:
                return PassOutcome("regression", f"mismatch-vs-float32 ({spec.low_precision})", problem)
            continue
        problem = compare_outputs(expected, actual, case.output_names, CompareMode(case.tol))
        if problem:
            return PassOutcome("regression", "mismatch-vs-expected", problem)
        if base.deterministic:
            drift = CompareMode(case.tol.tighter(spec.row), exact_non_float=True, onnx_bfloat16_rule=False)
            problem = compare_outputs(ref, actual, case.output_names, drift)
            if problem:
                return PassOutcome("regression", "drift-vs-original", problem)
    return None


def check_idempotent(job: CaseJob, spec: PassSpec, out_path: Path) -> PassOutcome | None:
    again = out_path.with_name("out2.onnx")
    run = run_tool(job, spec, out_path, again)
    if run.returncode != 0:
        failed = tool_failure(run)
        return PassOutcome("regression", "not-idempotent", f"second apply: {failed.reason}")
    first, second = out_path.read_bytes(), again.read_bytes()
    if first == second:
        return None
    pairs = zip(first, second, strict=False)
    offset = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(first), len(second)))
    return PassOutcome(
        "regression",
        "not-idempotent",
        f"second apply differs: {len(first)} vs {len(second)} bytes, first difference at byte {offset}",
    )


def forbidden_ops(path: Path, ops: tuple[str, ...]) -> list[str]:
    """The op types of ``ops`` that the model at ``path`` still holds (subgraphs and functions
    included)."""
    if not ops:
        return []
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    found: set[str] = set()

    def walk(nodes: Any) -> None:
        for node in nodes:
            if node.op_type in ops and node.domain in ("", "ai.onnx"):
                found.add(node.op_type)
            for attr in node.attribute:
                if attr.HasField("g"):
                    walk(attr.g.node)
                for graph in attr.graphs:
                    walk(graph.node)

    walk(model.graph.node)
    for function in model.functions:
        walk(function.node)
    return sorted(found)


def run_pass(
    job: CaseJob, case: CaseData, spec: PassSpec, base: Baseline, reference: list[list[Any]] | None
) -> PassOutcome:
    with tempfile.TemporaryDirectory(prefix="conf-", dir=job.tmp_root) as tmp:
        out_path = Path(tmp) / "out.onnx"
        run = run_tool(job, spec, case.model_path, out_path)
        if run.returncode == 2:
            return PassOutcome("declined", "declined", run.stderr_head or "(no stderr)")
        if run.returncode != 0:
            return tool_failure(run)
        if not out_path.is_file():
            return PassOutcome("regression", "tool-no-output", "exit 0 but no output file")
        left = forbidden_ops(out_path, job.forbidden.get(spec.text, ()))
        if left:
            return PassOutcome("regression", "forbidden-op", f"{', '.join(left)} left in the output")
        checker_error = check_model(out_path)
        if checker_error and base.checker_ok:
            return PassOutcome("regression", "checker", checker_error, checker_failed=True)
        before = deployable.Deployability(base.default_session, base.strict_inference)
        regressed = deployable.regressions(before, out_path, run_datasets(case))
        if regressed:
            kind = regressed[0].split(":", 1)[0]
            return PassOutcome("regression", kind, "; ".join(regressed), checker_failed=bool(checker_error))
        outcome = PassOutcome("ok" if base.ort_pass else "not-compared", checker_failed=bool(checker_error))
        if base.ort_pass and reference is not None:
            problem = check_rewritten(case, spec, base, reference, out_path)
            if problem:
                problem.checker_failed = outcome.checker_failed
                return problem
        if job.idempotence:
            problem = check_idempotent(job, spec, out_path)
            if problem:
                return problem
        return outcome


def load_case(job: CaseJob) -> CaseData:
    import onnx

    case_dir = Path(job.case_dir)
    model_path = case_dir / "model.onnx"
    model = onnx.load(str(model_path), load_external_data=False)
    return CaseData(
        model_path=model_path,
        model=model,
        data_sets=load_data_sets(case_dir, model),
        output_names=[o.name for o in model.graph.output],
        tol=case_tolerance(job.name),
    )


def process_case(job: CaseJob) -> CaseOutcome:
    try:
        return process_case_inner(job)
    except Exception:  # noqa: BLE001 - a harness bug: reported in full, exit status 3
        fallback = job.baseline or Baseline(ort_pass=False, category="harness-error")
        return CaseOutcome(job.name, fallback, job.baseline is not None, harness_error=traceback.format_exc())


def process_case_inner(job: CaseJob) -> CaseOutcome:
    try:
        case = load_case(job)
    except (OSError, ValueError, IndexError) as exc:
        base = Baseline(ort_pass=False, category="data-load", reason=short_error(exc))
        return CaseOutcome(
            job.name, base, False, [PassOutcome("regression", "data-load", base.reason) for _ in job.specs]
        )
    reference: list[list[Any]] | None = None
    if job.baseline is None:
        base, reference = compute_baseline(case)
        from_cache = False
    else:
        base, from_cache = job.baseline, True
        if base.ort_pass:
            reference = reference_outputs(case)
    results = [run_pass(job, case, spec, base, reference) for spec in job.specs]
    return CaseOutcome(job.name, base, from_cache, results)


# --------------------------------------------------------------------------- baseline cache


def versions() -> dict[str, str]:
    return {pkg: importlib.metadata.version(pkg) for pkg in ("onnx", "onnxruntime", "numpy")}


def cache_key(corpus: Path) -> dict[str, Any]:
    stamp = json.loads((corpus / CORPUS_STAMP).read_text())
    # Any edit to this harness invalidates the cache: the comparison rules live here.
    harness = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return {"harness": harness, "versions": versions(), "corpus": stamp}


def load_baseline_cache(path: Path, key: dict[str, Any]) -> dict[str, Baseline]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"run_corpus: ignoring unreadable baseline cache {path}: {exc}", file=sys.stderr)
        return {}
    if data.get("key") != key:
        print(f"run_corpus: baseline cache {path} is for other versions; recomputing", file=sys.stderr)
        return {}
    return {name: Baseline(**entry) for name, entry in data.get("cases", {}).items()}


def save_baseline_cache(path: Path, key: dict[str, Any], cases: dict[str, Baseline]) -> None:
    payload = {"key": key, "cases": {n: dataclasses.asdict(b) for n, b in sorted(cases.items())}}
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------- reporting


def baseline_category(base: Baseline) -> str:
    """A coarse bucket for the baseline failure summary."""
    if base.category in ("ort-load", "ort-run"):
        match = re.search(r"\[ONNXRuntimeError\] : \d+ : (\w+)", base.reason)
        return f"{base.category}:{match.group(1) if match else base.reason.split(':', 1)[0]}"
    if base.category == "mismatch":
        kinds = {"elements off": "values", "strings differ": "strings", "shape": "shape", "dtype": "dtype"}
        for needle, kind in kinds.items():
            if needle in base.reason:
                return f"mismatch:{kind}"
    return base.category


def summarize(specs: list[PassSpec], outcomes: list[CaseOutcome]) -> dict[str, Any]:
    baseline_fail = {o.name: o.baseline for o in outcomes if not o.baseline.ort_pass}
    summary: dict[str, Any] = {
        "cases": len(outcomes),
        "baseline": {
            "ort_pass": sum(o.baseline.ort_pass for o in outcomes),
            "checker_fail_on_original": sorted(o.name for o in outcomes if not o.baseline.checker_ok),
            "nondeterministic": sorted(
                o.name for o in outcomes if o.baseline.ort_pass and not o.baseline.deterministic
            ),
            "failure_categories": dict(
                Counter(baseline_category(b) for b in baseline_fail.values()).most_common()
            ),
            "failures": {n: f"{b.category}: {b.reason}" for n, b in sorted(baseline_fail.items())},
        },
        "pass_lists": [],
        "harness_errors": {o.name: o.harness_error for o in outcomes if o.harness_error},
    }
    for i, spec in enumerate(specs):
        results = [(o, o.results[i]) for o in outcomes if not o.harness_error]
        summary["pass_lists"].append(
            {
                "passes": spec.text,
                "tolerance_row": dataclasses.asdict(spec.row),
                "low_precision": spec.low_precision,
                "unknown_passes": list(spec.unknown_passes),
                "cases": len(results),
                "ort_pass_original": sum(o.baseline.ort_pass for o, _ in results),
                "still_passing": sum(o.baseline.ort_pass and r.status == "ok" for o, r in results),
                "not_compared": sum(r.status == "not-compared" for _, r in results),
                "declined": {o.name: r.reason for o, r in results if r.status == "declined"},
                "unchecked": {o.name: r.reason for o, r in results if r.status == "unchecked"},
                "checker_failures": sum(r.checker_failed for _, r in results),
                "regressions": [
                    {"case": o.name, "kind": r.kind, "reason": r.reason}
                    for o, r in results
                    if r.status == "regression"
                ],
            }
        )
    return summary


SAME_REASON_SHOWN = 5  # stdout only; --json keeps every regression


def print_regressions(regressions: list[dict[str, str]]) -> None:
    """Every regression, except that one reason shared by many cases is shown a few times."""
    seen: Counter[tuple[str, str]] = Counter()
    for reg in regressions:
        key = (reg["kind"], reg["reason"])
        seen[key] += 1
        if seen[key] <= SAME_REASON_SHOWN:
            print(f"   REGRESSION {reg['case']} [{reg['kind']}] {reg['reason']}")
    for (kind, reason), count in seen.items():
        if count > SAME_REASON_SHOWN:
            print(f"   ... and {count - SAME_REASON_SHOWN} more [{kind}] {reason}")


def print_report(summary: dict[str, Any], show_baseline: bool) -> None:
    base = summary["baseline"]
    print(f"\ncases: {summary['cases']}, ORT passes the original on {base['ort_pass']}")
    print("baseline failures by category:" if base["failure_categories"] else "no baseline failures")
    for cat, count in base["failure_categories"].items():
        print(f"  {count:5d}  {cat}")
    if base["checker_fail_on_original"]:
        print(f"original fails onnx.checker full check: {len(base['checker_fail_on_original'])} cases")
    if base["nondeterministic"]:
        print(
            "nondeterministic on ORT (compared with expected outputs only): "
            + ", ".join(base["nondeterministic"])
        )
    if show_baseline:
        for name, reason in base["failures"].items():
            print(f"  baseline-fail {name}: {reason}")
    for pl in summary["pass_lists"]:
        print(
            f"\n== --passes {pl['passes']}  (row: {Tolerance(**pl['tolerance_row'])}"
            f"{', against float32 ORT outputs' if pl['low_precision'] else ''})"
        )
        if pl["unknown_passes"]:
            print(
                f"   warning: no tolerance row for {', '.join(pl['unknown_passes'])}; used {EXACT_PASS_ROW}"
            )
        print(
            f"   cases {pl['cases']}, ORT passes original {pl['ort_pass_original']}, "
            f"still passing after rewrite {pl['still_passing']}, declined {len(pl['declined'])}, "
            f"unchecked {len(pl['unchecked'])}, checker failures {pl['checker_failures']}, "
            f"regressions {len(pl['regressions'])}"
        )
        for name, reason in pl["declined"].items():
            print(f"   declined {name}: {reason}")
        for name, reason in pl["unchecked"].items():
            print(f"   unchecked {name}: {reason}")
        print_regressions(pl["regressions"])
    for name, tb in summary["harness_errors"].items():
        print(f"\nHARNESS ERROR in {name}:\n{tb}", file=sys.stderr)


# --------------------------------------------------------------------------- main


def list_cases(corpus: Path, pattern: str | None) -> list[Path]:
    regex = re.compile(pattern) if pattern else None
    cases = sorted(p.parent for p in corpus.glob("*/model.onnx"))
    return [c for c in cases if regex is None or regex.search(c.name)]


def init_worker() -> None:
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # failures reach us as exceptions; keep stderr readable


def run_all(jobs: list[CaseJob], workers: int) -> list[CaseOutcome]:
    outcomes: list[CaseOutcome] = []
    ctx = multiprocessing.get_context("spawn")
    step = max(1, len(jobs) // 10)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=init_worker
    ) as pool:
        for n, outcome in enumerate(pool.map(process_case, jobs, chunksize=8), start=1):
            outcomes.append(outcome)
            if n % step == 0 or n == len(jobs):
                print(f"run_corpus: {n}/{len(jobs)} cases", file=sys.stderr, flush=True)
    return outcomes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="generated corpus (default: %(default)s)"
    )
    parser.add_argument("--tool", required=True, help="path to the onnx-rewrite binary")
    parser.add_argument(
        "--passes",
        action="append",
        required=True,
        metavar="LIST",
        help="pass list given to `apply --passes`; repeat for several lists; extra apply flags may "
        "follow in the same quoted value, e.g. 'fp16 --fp16-type bfloat16'",
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)"
    )
    parser.add_argument("--filter", metavar="REGEX", help="only cases whose name matches (re.search)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the summary as JSON")
    parser.add_argument(
        "--baseline-cache",
        type=Path,
        metavar="FILE",
        help=f"baseline cache (default: CORPUS/{DEFAULT_BASELINE_CACHE_NAME})",
    )
    parser.add_argument(
        "--forbid",
        action="append",
        default=[],
        metavar="PASSES=OP",
        help="OP must not remain in any output of that pass list (e.g. gemm-to-matmul=Gemm); repeatable",
    )
    parser.add_argument(
        "--idempotence",
        action="store_true",
        help="re-apply each pass list to its output; bytes must not change",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per tool invocation (default: %(default)s)"
    )
    parser.add_argument(
        "--tmp", metavar="DIR", help="where per-case temporary files go (default: system temp)"
    )
    parser.add_argument(
        "--show-baseline", action="store_true", help="list every case ORT fails on the original"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        specs = [parse_pass_spec(text) for text in args.passes]
    except ValueError as exc:
        print(f"run_corpus: error: {exc}", file=sys.stderr)
        return 2
    corpus: Path = args.corpus
    if not (corpus / CORPUS_STAMP).is_file():
        print(
            f"run_corpus: error: {corpus} is not a generated corpus (run gen_corpus.py first)",
            file=sys.stderr,
        )
        return 2
    tool = Path(args.tool)
    if not (tool.is_file() and os.access(tool, os.X_OK)):
        print(f"run_corpus: error: tool {tool} is not an executable file", file=sys.stderr)
        return 2
    cases = list_cases(corpus, args.filter)
    if not cases:
        print("run_corpus: error: no case matches", file=sys.stderr)
        return 2

    forbidden: dict[str, tuple[str, ...]] = {}
    for item in args.forbid:
        passes, _, op = item.partition("=")
        if not op:
            print(f"run_corpus: error: --forbid {item!r} is not PASSES=OP", file=sys.stderr)
            return 2
        forbidden[passes] = (*forbidden.get(passes, ()), op)

    cache_path = args.baseline_cache or corpus / DEFAULT_BASELINE_CACHE_NAME
    key = cache_key(corpus)
    cache = load_baseline_cache(cache_path, key)
    jobs = [
        CaseJob(
            c.name,
            str(c),
            str(tool.resolve()),
            specs,
            cache.get(c.name),
            args.idempotence,
            args.timeout,
            args.tmp,
            forbidden,
        )
        for c in cases
    ]
    start = time.monotonic()
    outcomes = run_all(jobs, max(1, args.jobs))
    elapsed = time.monotonic() - start

    for outcome in outcomes:
        if not outcome.baseline_from_cache and not outcome.harness_error:
            cache[outcome.name] = outcome.baseline
    save_baseline_cache(cache_path, key, cache)

    summary = summarize(specs, outcomes)
    summary.update(
        versions=versions(),
        corpus=str(corpus),
        tool=str(tool),
        elapsed_s=round(elapsed, 1),
        jobs=args.jobs,
        baseline_from_cache=sum(o.baseline_from_cache for o in outcomes),
    )
    print_report(summary, args.show_baseline)
    cached = summary["baseline_from_cache"]
    print(
        f"\n{len(outcomes)} cases x {len(specs)} pass list(s) in {elapsed:.1f}s with {args.jobs} jobs "
        f"(baseline {cached} cached, {len(outcomes) - cached} computed)"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if summary["harness_errors"]:
        return 3
    return 1 if any(pl["regressions"] for pl in summary["pass_lists"]) else 0


if __name__ == "__main__":
    sys.exit(main())
