#!/usr/bin/env python3
"""Compare a Rust ONNX text printer with onnx.printer, model by model.

Usage:
    compare_printer.py MODELS_DIR PRINT_BINARY [--jobs N] [--show N]

For every `.onnx` file under MODELS_DIR (recursively), runs `PRINT_BINARY path` (which must
write the model's text to stdout, as `crates/text/examples/print_model.rs` does) and compares
its output byte for byte with `onnx.printer.to_text(onnx.load(path))`. Reports the number of
models, matches and mismatches, and for each mismatch the first differing line.

Models that onnx.printer itself cannot print (it raises) are counted apart.
Exit status: 0 when every printable model matches, 1 otherwise.

Build the binary with:
    cargo build --release -p onnx-rewrite-text --example print_model
    # -> target/release/examples/print_model
"""

from __future__ import annotations

import argparse
import concurrent.futures
import pathlib
import subprocess
import sys

import onnx
import onnx.printer


def first_difference(expected: str, actual: str) -> str:
    """A short description of the first line where the two texts differ."""
    expected_lines = expected.split("\n")
    actual_lines = actual.split("\n")
    for number, (e, a) in enumerate(zip(expected_lines, actual_lines), start=1):
        if e != a:
            column = next((i for i, (x, y) in enumerate(zip(e, a)) if x != y), min(len(e), len(a)))
            return (
                f"line {number}, column {column + 1}:\n"
                f"    onnx: {e[max(0, column - 40) : column + 80]!r}\n"
                f"    rust: {a[max(0, column - 40) : column + 80]!r}"
            )
    return f"line counts differ: onnx {len(expected_lines)}, rust {len(actual_lines)}"


def compare(path: pathlib.Path, binary: str) -> tuple[str, str]:
    """Returns (status, detail); status is 'match', 'mismatch', 'rust-error' or 'onnx-error'."""
    try:
        expected = onnx.printer.to_text(onnx.load(str(path), load_external_data=False))
    except Exception as e:  # noqa: BLE001 - any failure of the oracle is reported, not fatal
        return "onnx-error", f"{type(e).__name__}: {e}"
    result = subprocess.run([binary, str(path)], capture_output=True, check=False)
    if result.returncode != 0:
        return "rust-error", result.stderr.decode(errors="replace").strip()
    actual = result.stdout.decode("utf-8", errors="replace")
    if actual == expected:
        return "match", ""
    return "mismatch", first_difference(expected, actual)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=pathlib.Path)
    parser.add_argument("binary")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--show", type=int, default=20, help="mismatches to show in full")
    args = parser.parse_args()

    paths = sorted(args.models.rglob("*.onnx"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda p: (p, *compare(p, args.binary)), paths))

    counts: dict[str, int] = {}
    for _, status, _ in results:
        counts[status] = counts.get(status, 0) + 1
    print(f"models:     {len(results)}")
    print(f"identical:  {counts.get('match', 0)}")
    print(f"different:  {counts.get('mismatch', 0)}")
    print(f"rust error: {counts.get('rust-error', 0)}")
    print(f"onnx.printer raised (not compared): {counts.get('onnx-error', 0)}")
    shown = 0
    for path, status, detail in results:
        if status in ("mismatch", "rust-error") and shown < args.show:
            print(f"\n{status}: {path}\n  {detail}")
            shown += 1
        elif status == "onnx-error":
            print(f"\nonnx-error: {path}\n  {detail}")
    failed = counts.get("mismatch", 0) + counts.get("rust-error", 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
