#!/usr/bin/env python3
"""Generate the ONNX node-test conformance corpus from the pinned onnx package.

Writes every case of ``onnx.backend.test.case.node.collect_testcases()`` in the
standard backend-test layout::

    OUT_DIR/<case>/model.onnx
    OUT_DIR/<case>/test_data_set_<n>/input_<i>.pb
    OUT_DIR/<case>/test_data_set_<n>/output_<i>.pb

Tensors are written as TensorProto, sequences as SequenceProto, optionals as
OptionalProto and maps as MapProto, exactly as onnx's own
``onnx/backend/test/cmd_tools.py generate-data`` writes data sets (the type is
taken from the matching graph input/output).

The corpus is cached: ``OUT_DIR/.corpus-stamp`` records the onnx version and the
layout version; when it matches, nothing is regenerated. A new corpus is written
to a sibling temporary directory and renamed into place, so an interrupted run
never leaves a half-written corpus behind a valid stamp.

Usage: gen_corpus.py [OUT_DIR] [--force]   (OUT_DIR defaults to <repo>/target/corpus)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, TypeProto, numpy_helper

STAMP_NAME = ".corpus-stamp"
# Bump when the on-disk layout written by this script changes.
LAYOUT_VERSION = 1
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "target" / "corpus"


def expected_stamp() -> dict[str, Any]:
    return {"onnx": onnx.__version__, "layout": LAYOUT_VERSION}


def read_stamp(out_dir: Path) -> dict[str, Any] | None:
    stamp = out_dir / STAMP_NAME
    if not stamp.is_file():
        return None
    try:
        return json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"gen_corpus: ignoring unreadable stamp {stamp}: {exc}", file=sys.stderr)
        return None


def serialize_value(value: Any, type_proto: TypeProto, name: str) -> bytes:
    """Serialize one input/output value the way onnx's cmd_tools.py does."""
    kind = type_proto.WhichOneof("value")
    if kind == "map_type":
        return numpy_helper.from_dict(value, name).SerializeToString()
    if kind == "sequence_type":
        return numpy_helper.from_list(value, name).SerializeToString()
    if kind == "optional_type":
        return numpy_helper.from_optional(value, name).SerializeToString()
    if kind != "tensor_type":
        raise ValueError(f"value {name!r}: unsupported type kind {kind!r}")
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(value, name).SerializeToString()


def write_case(case: Any, out_dir: Path) -> None:
    """Write one TestCase (model + data sets) under out_dir/<case.name>."""
    case_dir = out_dir / case.name
    case_dir.mkdir(parents=True)
    model: onnx.ModelProto = case.model
    (case_dir / "model.onnx").write_bytes(model.SerializeToString())
    for n, (inputs, outputs) in enumerate(case.data_sets):
        data_dir = case_dir / f"test_data_set_{n}"
        data_dir.mkdir()
        for i, value in enumerate(inputs):
            vi = model.graph.input[i]
            (data_dir / f"input_{i}.pb").write_bytes(serialize_value(value, vi.type, vi.name))
        for i, value in enumerate(outputs):
            vi = model.graph.output[i]
            (data_dir / f"output_{i}.pb").write_bytes(serialize_value(value, vi.type, vi.name))


def collect_node_cases() -> list[Any]:
    # Importing the case modules runs numpy code that warns on purpose (overflow
    # in casts, log(0) ...); those warnings are about the reference data, not us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        cases = collect_testcases()
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise RuntimeError("onnx returned duplicate node-test case names")
    return cases


def check_replaceable(path: Path) -> None:
    """Refuse to go on when OUT_DIR exists and is not a corpus this script wrote."""
    if not path.exists():
        return
    if not path.is_dir():
        raise RuntimeError(f"{path} exists and is not a directory")
    if not (path / STAMP_NAME).exists() and any(path.iterdir()):
        raise RuntimeError(
            f"{path} is not empty and has no {STAMP_NAME}: refusing to delete it "
            "(pick another OUT_DIR or remove it yourself)"
        )


def remove_corpus_dir(path: Path) -> None:
    """Remove a previous corpus, refusing to delete a directory that is not one."""
    check_replaceable(path)
    if path.exists():
        shutil.rmtree(path)


def generate(out_dir: Path) -> int:
    check_replaceable(out_dir)
    cases = collect_node_cases()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        for case in cases:
            write_case(case, staging)
        stamp = dict(expected_stamp(), cases=len(cases))
        (staging / STAMP_NAME).write_text(json.dumps(stamp, sort_keys=True) + "\n")
        remove_corpus_dir(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return len(cases)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "out_dir",
        nargs="?",
        type=Path,
        default=DEFAULT_OUT,
        help="corpus directory (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even when the stamp matches")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir: Path = args.out_dir
    stamp = read_stamp(out_dir)
    wanted = expected_stamp()
    if not args.force and stamp is not None and all(stamp.get(k) == v for k, v in wanted.items()):
        print(f"gen_corpus: {out_dir} is up to date ({stamp.get('cases')} cases, onnx {onnx.__version__})")
        return 0
    start = time.monotonic()
    try:
        count = generate(out_dir)
    except RuntimeError as exc:
        print(f"gen_corpus: error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    print(f"gen_corpus: wrote {count} cases to {out_dir} in {elapsed:.1f}s (onnx {onnx.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
