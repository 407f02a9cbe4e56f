#!/usr/bin/env python3
"""Regenerate the golden files of crates/text/tests/golden from the onnx 1.23.2 oracle.

Usage:
    make_golden.py [GOLDEN_DIR]     (default: crates/text/tests/golden)

- print/NAME.onnx and print/NAME.txt: the small edge-case models of edge_models.py and the text
  onnx.printer.to_text writes for each (models it cannot print are skipped). The Rust tests check
  that the printer writes exactly that text and that the parser reads it back.
- parse/NAME.txt are hand-written texts (not generated); for each, parse/NAME.onnx is what
  onnx.parser.parse_model makes of it, or parse/NAME.rejected holds onnx.parser's error when it
  rejects the text. The Rust tests check that the parser builds the same model.

Run it again after changing edge_models.py or adding a text, and commit the results.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import onnx
import onnx.parser
import onnx.printer

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import edge_models  # noqa: E402


def main() -> None:
    golden = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "crates/text/tests/golden")
    print_dir = golden / "print"
    print_dir.mkdir(parents=True, exist_ok=True)
    for stale in print_dir.iterdir():
        stale.unlink()
    written = 0
    for name, model in edge_models.cases(np.random.default_rng(0), n_random=300).items():
        try:
            text = onnx.printer.to_text(model)
        except Exception as e:  # noqa: BLE001
            print(f"skipped {name}: onnx.printer raised {type(e).__name__}: {e}")
            continue
        (print_dir / f"{name}.onnx").write_bytes(model.SerializeToString(deterministic=True))
        (print_dir / f"{name}.txt").write_text(text, encoding="utf-8", newline="")
        written += 1
    print(f"wrote {written} printer goldens to {print_dir}")

    parse_dir = golden / "parse"
    for text_path in sorted(parse_dir.glob("*.txt")):
        text = text_path.read_text(encoding="utf-8")
        onnx_path = text_path.with_suffix(".onnx")
        rejected_path = text_path.with_suffix(".rejected")
        onnx_path.unlink(missing_ok=True)
        rejected_path.unlink(missing_ok=True)
        try:
            model = onnx.parser.parse_model(text)
        except Exception as e:  # noqa: BLE001
            rejected_path.write_text(f"{e}\n", encoding="utf-8")
            print(f"onnx.parser rejects {text_path.name}")
            continue
        onnx_path.write_bytes(model.SerializeToString(deterministic=True))
    print(f"wrote parser goldens to {parse_dir}")


if __name__ == "__main__":
    main()
