"""What a user's toolchain asks of a model, checked the same way by every harness.

The harnesses compare outputs on onnxruntime with graph optimizations disabled, so that ORT's
own rewrites cannot hide a difference a pass made. That session is not the one users create:
onnxruntime's default session options constant-fold and re-run onnx's shape inference on the
folded graph, and exporters, quantizers and converters run onnx's shape inference first. A graph
can pass the disabled-optimization run and still be refused there (after inlining an If, a
[1]-shaped tensor reaches Range, whose inputs must be scalars: "Input to 'Range' op should be
scalars" at session creation).

So every harness also asks, of the original and of each output:
  * ``default_session``: does it load with ``onnxruntime.SessionOptions()`` as created (only the
    log level changed, which does not change behaviour) and run on the case's inputs?
  * ``strict_inference``: does ``onnx.shape_inference.infer_shapes(strict_mode=True,
    data_prop=True)`` accept it?
A model for which a check succeeds before a pass and fails after is a regression, whatever else
the harness checks (``regressions``, which runs on the output only the checks the original
passed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Longest error text kept per check: enough for ORT's node name and reason.
ERROR_LIMIT = 300


def short_error(exc: BaseException, limit: int = ERROR_LIMIT) -> str:
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Deployability:
    """Each field: None when the check succeeds, else why it failed."""

    default_session: str | None
    strict_inference: str | None


def default_session(path: Path) -> Any:
    """An onnxruntime CPU session with the default session options (graph optimizations on)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures reach us as exceptions
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def default_session_problem(path: Path, run: Callable[[Any], object]) -> str | None:
    """None when ``path`` loads in a default session and ``run(session)`` succeeds on it."""
    try:
        session = default_session(path)
    except Exception as exc:  # noqa: BLE001 - ORT raises many types; the text is the reason
        return f"load: {short_error(exc)}"
    try:
        run(session)
    except Exception as exc:  # noqa: BLE001 - as above
        return f"run: {short_error(exc)}"
    return None


def strict_inference_problem(path: Path) -> str | None:
    """None when onnx's strict shape inference with data propagation accepts the model."""
    import onnx

    try:
        # Weights are not needed to infer shapes; external data stays on disk.
        model = onnx.load(str(path), load_external_data=False)
        onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - InferenceError, ValidationError, and others
        return short_error(exc)
    return None


def deployability(path: Path, run: Callable[[Any], object]) -> Deployability:
    return Deployability(default_session_problem(path, run), strict_inference_problem(path))


def regressions(before: Deployability, output: Path, run: Callable[[Any], object]) -> list[str]:
    """What succeeded on the original (``before``) and fails on ``output``, one line each."""
    found = []
    if before.default_session is None:
        problem = default_session_problem(output, run)
        if problem is not None:
            found.append(f"default-session: {problem}")
    if before.strict_inference is None:
        problem = strict_inference_problem(output)
        if problem is not None:
            found.append(f"strict-inference: {problem}")
    return found
