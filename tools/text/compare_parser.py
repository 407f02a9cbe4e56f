#!/usr/bin/env python3
"""Compare a Rust ONNX text parser with onnx.parser, text by text.

Usage:
    compare_parser.py INPUTS_DIR PARSE_BINARY [--jobs N] [--show N]

INPUTS_DIR is searched recursively for `.onnx` models, whose text is `onnx.printer.to_text` of
the model, and `.txt` files, which are texts already. For each text, runs `PARSE_BINARY` with the
text on stdin (it must write the parsed model as binary protobuf to stdout, as
`crates/text/examples/parse_model.rs` does) and compares the result with
`onnx.parser.parse_model(text)`, as deterministic serializations, so presence of optional fields
counts and NaNs compare by their bits.

Texts onnx.parser rejects are reported apart, with whether the Rust parser accepted them (it
reads some texts onnx.parser cannot, such as `tensors` attribute lists; see the parser's docs).
Exit status: 0 when every text onnx.parser accepts gives the same model, 1 otherwise.

Build the binary with:
    cargo build --release -p onnx-rewrite-text --example parse_model
"""

from __future__ import annotations

import argparse
import concurrent.futures
import pathlib
import subprocess
import sys

import onnx
import onnx.parser
import onnx.printer


def first_field_difference(expected: onnx.ModelProto, actual: onnx.ModelProto) -> str:
    """The first line where the two messages' text-format dumps differ."""
    e_lines = str(expected).split("\n")
    a_lines = str(actual).split("\n")
    for number, (e, a) in enumerate(zip(e_lines, a_lines), start=1):
        if e != a:
            return f"protobuf text line {number}:\n    onnx: {e.strip()[:120]!r}\n    rust: {a.strip()[:120]!r}"
    return f"protobuf text lengths differ: onnx {len(e_lines)} lines, rust {len(a_lines)} lines"


def without_list_elements(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model less the elements of tensors, graphs and type_protos attributes, which
    onnx.parser parses and then drops (the Rust parser keeps them)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())

    def strip_graph(graph: onnx.GraphProto) -> None:
        strip_nodes(graph.node)

    def strip_nodes(nodes) -> None:
        for node in nodes:
            for attr in node.attribute:
                del attr.tensors[:]
                del attr.graphs[:]
                del attr.type_protos[:]
                if attr.HasField("g"):
                    strip_graph(attr.g)

    strip_graph(model.graph)
    for function in model.functions:
        strip_nodes(function.node)
    return model


def compare(path: pathlib.Path, binary: str) -> tuple[str, str]:
    """Returns (status, detail): 'match', 'match-less-lists', 'mismatch', 'rust-error',
    'onnx-rejects' or 'no-text'."""
    try:
        if path.suffix == ".onnx":
            text = onnx.printer.to_text(onnx.load(str(path), load_external_data=False))
        else:
            text = path.read_text(encoding="utf-8")
    except Exception as e:  # noqa: BLE001
        return "no-text", f"{type(e).__name__}: {e}"
    result = subprocess.run([binary], input=text.encode("utf-8"), capture_output=True, check=False)
    try:
        expected = onnx.parser.parse_model(text)
    except Exception as e:  # noqa: BLE001
        message = e.args[0] if e.args else str(e)
        if isinstance(message, bytes):
            message = message.decode("utf-8", errors="replace")
        # onnx.parser's message ends with the reason, after the position and the context line.
        reason = str(message).strip().splitlines()[-1][:120]
        accepted = "accepts" if result.returncode == 0 else "rejects"
        return "onnx-rejects", f"{reason} (the Rust parser {accepted} it)"
    if result.returncode != 0:
        return "rust-error", result.stderr.decode(errors="replace").strip()
    actual = onnx.ModelProto.FromString(result.stdout)
    if actual.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True):
        return "match", ""
    stripped = without_list_elements(actual)
    if stripped.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True):
        return "match-less-lists", ""
    return "mismatch", first_field_difference(expected, actual)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", type=pathlib.Path)
    parser.add_argument("binary")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--show", type=int, default=20, help="mismatches to show in full")
    parser.add_argument("--verbose", action="store_true", help="list every text onnx.parser rejects")
    args = parser.parse_args()

    paths = sorted([*args.inputs.rglob("*.onnx"), *args.inputs.rglob("*.txt")])
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda p: (p, *compare(p, args.binary)), paths))

    counts: dict[str, int] = {}
    for _, status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    print(f"texts:                          {len(results)}")
    print(f"same model as onnx.parser:      {counts.get('match', 0)}")
    print(f"same but for list elements onnx.parser drops: {counts.get('match-less-lists', 0)}")
    print(f"different model:                {counts.get('mismatch', 0)}")
    print(f"rust rejects, onnx accepts:     {counts.get('rust-error', 0)}")
    print(f"onnx.parser rejects:            {counts.get('onnx-rejects', 0)}")
    print(f"no text (printer raised):       {counts.get('no-text', 0)}")
    shown = 0
    for path, status, detail in results:
        if status in ("mismatch", "rust-error") and shown < args.show:
            print(f"\n{status}: {path}\n  {detail}")
            shown += 1
        elif status in ("onnx-rejects", "no-text") and args.verbose:
            print(f"\n{status}: {path}\n  {detail}")
    # Texts onnx.parser rejects, by its message (position stripped) and the Rust parser's verdict.
    reasons: dict[str, int] = {}
    for _, status, detail in results:
        if status == "onnx-rejects":
            reasons[detail] = reasons.get(detail, 0) + 1
    for message, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  onnx.parser rejects {count}: {message}")
    failed = counts.get("mismatch", 0) + counts.get("rust-error", 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
