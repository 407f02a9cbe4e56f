"""onnx-rewrite: graph-rewriting compiler passes for ONNX models, in memory.

    import onnx, onnx_rewrite
    model = onnx.load("model.onnx")
    model = onnx_rewrite.apply(model, passes=["gemm-to-matmul", "fp16"], fp16_keep_io_types=True)

``apply`` takes an ``onnx.ModelProto``, ``bytes`` or a path and returns the same kind. Pass
options are the command line's ``--<pass>-<option>`` flags as keyword arguments with ``_`` for
``-`` (``fp16_block_op=["Resize"]``). Errors are raised as :class:`Error` subclasses carrying the
command line's message: :class:`InputError` (exit status 1), :class:`RefusedError` (exit status
2: a pass refused the model, or ``strict=True`` met a decline) and :class:`VerifyError`
(``verify=True`` found an output over tolerance).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._native import Error, InputError, RefusedError, VerifyError

__version__ = _native.__version__
__all__ = [
    "apply",
    "info",
    "passes",
    "pass_options",
    "Error",
    "InputError",
    "RefusedError",
    "VerifyError",
]

PathLike = Union[str, "os.PathLike[str]"]

# The command line's defaults for the e-graph limits (crates/cli/src/args.rs).
_DEFAULT_ITER_LIMIT = 30
_DEFAULT_TIME_LIMIT = 600.0


def passes() -> List[Tuple[str, str]]:
    """The passes, as (name, summary), in the order ``passes=["all"]`` runs them."""
    return list(_native.passes())


def pass_options() -> Dict[str, Dict[str, Any]]:
    """Every pass option by keyword name (``fp16_keep_io_types``): its flag, whether it takes a
    value, whether it may be repeated (a list), and its help."""
    return {
        flag.replace("-", "_"): {
            "flag": "--" + flag,
            "value": value,
            "repeated": repeated,
            "help": help_,
        }
        for flag, value, repeated, help_ in _native.pass_options()
    }


def _option_pairs(options: Mapping[str, Any]) -> List[Tuple[str, Optional[str]]]:
    known = {flag.replace("-", "_"): (flag, value, repeated) for flag, value, repeated, _ in _native.pass_options()}
    pairs: List[Tuple[str, Optional[str]]] = []
    for key, given in options.items():
        if key not in known:
            raise InputError(
                f"unknown option '{key}'; the pass options are: {', '.join(sorted(known))}"
            )
        flag, value_name, repeated = known[key]
        if value_name is None:
            # A switch: True sets it, False leaves it unset (as omitting the flag would).
            if not isinstance(given, bool):
                raise InputError(f"--{flag} is a switch: pass True or False, not {given!r}")
            if given:
                pairs.append((flag, None))
            continue
        if given is None:
            continue
        values = list(given) if isinstance(given, (list, tuple)) else [given]
        if len(values) > 1 and not repeated:
            raise InputError(f"--{flag} takes one value, got {len(values)}")
        pairs.extend((flag, _option_text(v)) for v in values)
    return pairs


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _passes_text(passes: Union[str, Iterable[str]]) -> str:
    if isinstance(passes, str):
        return passes
    return ",".join(passes)


def _shapes(verify_shapes: Optional[Mapping[str, Union[int, Sequence[int]]]]) -> List[Tuple[str, List[int]]]:
    out = []
    for name, dims in (verify_shapes or {}).items():
        out.append((name, [int(dims)] if isinstance(dims, int) else [int(d) for d in dims]))
    return out


def _is_model_proto(model: Any) -> bool:
    # Duck-typed, so `onnx` is needed only by callers that hold ModelProtos.
    return hasattr(model, "SerializeToString") and hasattr(model, "graph")


def apply(
    model: Union["onnx.ModelProto", bytes, PathLike],  # noqa: F821
    passes: Union[str, Sequence[str]] = "all",
    *,
    output: Optional[PathLike] = None,
    strict: bool = False,
    verify: bool = False,
    verify_shapes: Optional[Mapping[str, Union[int, Sequence[int]]]] = None,
    report: Optional[PathLike] = None,
    report_html: Optional[PathLike] = None,
    dot: Optional[PathLike] = None,
    return_report: bool = False,
    trace_rules: bool = False,
    egraph_node_limit: Optional[int] = None,
    egraph_iter_limit: int = _DEFAULT_ITER_LIMIT,
    egraph_time_limit: float = _DEFAULT_TIME_LIMIT,
    external_data: str = "as-loaded",
    in_place: bool = False,
    allow_unknown_fields: bool = False,
    base_dir: Optional[PathLike] = None,
    **options: Any,
):
    """Applies passes to a model and returns the rewritten model, of the kind given.

    model: an ``onnx.ModelProto`` (returns a new ModelProto), serialized ``bytes`` (returns
        bytes), or a path (writes ``output`` and returns its path; external data is read beside
        the input and written beside the output, as ``external_data`` says:
        ``"as-loaded"``, ``"always"`` or ``"never"``).
    passes: a list of pass names or a comma-separated string; ``"all"`` runs every pass in the
        documented order, ``"none"`` only loads and saves.
    strict: raise :class:`RefusedError` when a pass declined a node.
    verify: run the original and the rewritten model with tract-onnx on random inputs and raise
        :class:`VerifyError` when an output is over the tolerance table's row for the passes.
        ``verify_shapes`` binds an input's shape (``{"input_ids": [1, 8]}``) or a symbolic dim
        (``{"seq": 8}``); unbound symbolic dims are 2.
    report, report_html, dot: write the JSON report, the before/after HTML page, or the
        rewritten regions for Graphviz. ``return_report=True`` returns ``(model, report_dict)``.
    base_dir: for a ModelProto or bytes whose tensors are stored externally, the folder that
        holds their files (a path argument finds them by itself).
    **options: pass options, the ``--<pass>-<option>`` flags with ``_`` for ``-``.
    """
    settings = {
        "passes": _passes_text(passes),
        "options": _option_pairs(options),
        "strict": bool(strict),
        "verify": bool(verify),
        "verify_shapes": _shapes(verify_shapes),
        "report_html": None if report_html is None else os.fspath(report_html),
        "dot": None if dot is None else os.fspath(dot),
        "trace_rules": bool(trace_rules),
        "egraph_node_limit": egraph_node_limit,
        "egraph_iter_limit": int(egraph_iter_limit),
        "egraph_time_limit": float(egraph_time_limit),
        "allow_unknown_fields": bool(allow_unknown_fields),
    }
    folder = None if base_dir is None else os.fspath(base_dir)

    if isinstance(model, (str, os.PathLike)):
        if output is None:
            raise InputError(
                f"{os.fspath(model)}: a path in needs output= (the path to write the rewritten model to)"
            )
        report_text = _native.apply_path(
            os.fspath(model), os.fspath(output), settings, external_data, bool(in_place)
        )
        result: Any = output
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data = model if isinstance(model, bytes) else bytes(model)
        result, report_text = _native.apply_bytes(data, settings, folder)
    elif _is_model_proto(model):
        # The one copy the protobuf boundary needs: C++ message -> bytes. The native side
        # borrows these bytes and encodes its result straight into the bytes parsed below.
        data = model.SerializeToString()
        out, report_text = _native.apply_bytes(data, settings, folder)
        del data
        result = type(model)()
        result.ParseFromString(out)
    else:
        raise TypeError(
            f"apply() takes an onnx.ModelProto, bytes or a path, not {type(model).__name__}"
        )

    report_dict = json.loads(report_text)
    if report is not None:
        with open(report, "w", encoding="utf-8") as f:
            json.dump(report_dict, f, indent=2)
            f.write("\n")
    if return_report:
        return result, report_dict
    return result


def info(model: Union["onnx.ModelProto", bytes, PathLike], *, base_dir: Optional[PathLike] = None) -> Dict[str, Any]:  # noqa: F821
    """``onnx-rewrite info --json`` as a dict: opsets, inputs and outputs, sizes, the op
    histogram, and what each pass would find."""
    folder = None if base_dir is None else os.fspath(base_dir)
    if isinstance(model, (str, os.PathLike)):
        return json.loads(_native.info_path(os.fspath(model)))
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = model if isinstance(model, bytes) else bytes(model)
        return json.loads(_native.info_bytes(data, folder))
    if _is_model_proto(model):
        return json.loads(_native.info_bytes(model.SerializeToString(), folder))
    raise TypeError(f"info() takes an onnx.ModelProto, bytes or a path, not {type(model).__name__}")
