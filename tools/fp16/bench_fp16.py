#!/usr/bin/env python3
"""Benchmark: fp16 conversion of a large export, onnx-rewrite against onnxruntime's converter, one run.

Each converter runs in its own process (so one's memory cannot count against the other); the
parent polls /proc/<pid>/status every 10 ms for VmHWM and RssAnon and keeps the peaks. Peak
RssAnon is the figure the acceptance uses (anonymous memory: the mapped model file's page cache
is not the converter's allocation); VmHWM (peak RSS, file-backed pages included) is shown beside it.
Model size = model.onnx plus its external data. The page cache is warmed by one read of the
files first so that neither converter pays the cold read alone, and every run starts after a
`sync` so that none pays for the writeback of another's output. onnx-rewrite runs `--repeat`
times (median reported, peak memory the largest); onnxruntime's converter, at ~40 s, once.

    .venv/bin/python tools/fp16/bench_fp16.py --tool target/release/onnx-rewrite \
        target/bench/modernbert-large-dynamo [more model folders] [--json out.json] [--skip-ort] [--out-dir /dev/shm] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORT_SNIPPET = """
import sys, onnx
from onnxruntime.transformers.float16 import convert_float_to_float16
m = onnx.load(sys.argv[1])
m = convert_float_to_float16(m, keep_io_types=True)
onnx.save(m, sys.argv[2], save_as_external_data=True, location="out.onnx.data")
"""


def status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon"):
                out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return out


def measure(cmd: list[str]) -> dict:
    # Dirty pages left by an earlier run would be written back during this one and billed to it.
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = {"VmHWM": 0, "RssAnon": 0}
    while proc.poll() is None:
        for k, v in status_kb(proc.pid).items():
            peak[k] = max(peak[k], v)
        time.sleep(0.01)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return {
        "wall_s": round(wall, 2),
        "peak_rss_anon_mb": round(peak["RssAnon"] / 1024, 1),
        "peak_vmhwm_mb": round(peak["VmHWM"] / 1024, 1),
        "exit": proc.returncode,
        "stderr_tail": err[-300:],
    }


def model_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("model.onnx"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--out-dir", type=Path, help="where both converters write (default: beside the model; "
                    "/dev/shm takes the disk's write cost out of both figures)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of onnx-rewrite per model; the median run is reported (onnxruntime's converter runs once)")
    ap.add_argument("models", nargs="+", type=Path)
    args = ap.parse_args()
    tool = str(Path(args.tool).resolve())
    results = []
    for folder in args.models:
        size = model_bytes(folder)
        for p in folder.iterdir():
            if p.name.startswith("model.onnx"):
                with p.open("rb") as f:
                    while f.read(1 << 24):
                        pass
        row: dict = {"model": folder.name, "model_mb": round(size / 2**20, 1),
                     "out_dir": str(args.out_dir or folder.parent)}
        with tempfile.TemporaryDirectory(prefix="bench-fp16-", dir=args.out_dir or folder.parent) as tmp:
            runs = [measure([tool, "apply", str(folder / "model.onnx"), "-o", str(Path(tmp) / "ours.onnx"), "--passes", "fp16", "-q"])
                    for _ in range(max(1, args.repeat))]
            ours = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
            ours["all_wall_s"] = [r["wall_s"] for r in runs]
            ours["peak_rss_anon_mb"] = max(r["peak_rss_anon_mb"] for r in runs)
            row["onnx_rewrite"] = ours
            if not args.skip_ort:
                theirs = measure(
                    [sys.executable, "-c", ORT_SNIPPET, str(folder / "model.onnx"), str(Path(tmp) / "out.onnx")])
                row["onnxruntime"] = theirs
                row["speedup"] = round(theirs["wall_s"] / max(ours["wall_s"], 1e-9), 1)
        row["ours_anon_vs_model"] = round(ours["peak_rss_anon_mb"] / row["model_mb"], 3)
        results.append(row)
        print(json.dumps(row, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
