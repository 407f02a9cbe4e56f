"""The HTML report of `--passes all` on a real export, rendered in headless Chromium.

The report is loaded in an iframe of a small harness page; the harness inspects the *rendered*
document (layout boxes, not just the markup) and writes its findings into its own DOM, which
`chromium --dump-dom` prints. Console messages come from Chromium's log on stderr.

Without Chromium the test is skipped with the reason (never passed silently); `.ci/run`
installs the Debian package when it can.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest

import onnx_rewrite

HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<pre id="result">pending</pre>
<iframe id="report" src="report.html" width="1400" height="3000"></iframe>
<script>
function check() {
  const doc = document.getElementById('report').contentDocument;
  const out = {loaded: !!doc && !!doc.body};
  if (out.loaded) {
    const cells = row => [...row.cells].map(c => c.textContent.trim());
    const passRows = [...doc.querySelectorAll('table#passes tbody tr')].map(cells);
    out.passes = passRows.map(r => r[0]);
    out.passesWithCounts = passRows.filter(r => Number(r[3]) > 0 || Number(r[4]) > 0 || r[1] !== r[2]).map(r => r[0]);
    const head = [...doc.querySelectorAll('table#ops thead th')].map(th => th.textContent.trim());
    out.opsHeader = head;
    out.opsRows = doc.querySelectorAll('table#ops tbody tr').length;
    out.opsChanged = [...doc.querySelectorAll('table#ops tbody tr')].map(cells).filter(r => r[1] !== r[2]).length;
    const svgs = [...doc.querySelectorAll('figure.region svg')];
    out.svgs = svgs.length;
    out.svgsDrawn = svgs.filter(s => {
      const box = s.getBoundingClientRect();
      return box.width > 20 && box.height > 20 && s.querySelectorAll('rect').length > 0;
    }).length;
    out.svgNodeLabels = svgs.slice(0, 3).map(s => [...s.querySelectorAll('text')].map(t => t.textContent));
  }
  document.getElementById('result').textContent = JSON.stringify(out);
}
document.getElementById('report').addEventListener('load', check);
</script></body></html>
"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    found = chromium()
    if found is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it when "
            "it runs as root): the HTML report was NOT checked in a browser"
        )
    return found


def test_report_html_renders_in_chromium(models, tmp_path, browser):
    model = onnx.load(str(models / "qwen2_moe_hf_default" / "model.onnx"))
    onnx_rewrite.apply(model, passes="all", report_html=tmp_path / "report.html", dot=tmp_path / "r.dot", verify=False)
    (tmp_path / "harness.html").write_text(HARNESS, encoding="utf-8")

    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--allow-file-access-from-files",  # the harness reads the iframe's document
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            (tmp_path / "harness.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},  # a fresh profile, nothing from the machine
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert match, proc.stdout[-2000:]
    raw = match.group(1)
    assert raw != "pending", "the report never finished loading"
    result = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))

    # No console errors: the report has no script, so any message would be a rendering problem.
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "report.html" in line]
    assert console == [], console

    assert result["loaded"]
    assert result["passes"] == ["inline-functions", "gemm-to-matmul", "lower-if", "moe-dense", "fp16", "hoist-scalars"]
    for rewriting in ("gemm-to-matmul", "moe-dense", "fp16"):
        assert rewriting in result["passesWithCounts"], result
    assert result["opsHeader"][:3] == ["op", "before", "after"]
    assert result["opsRows"] > 10 and result["opsChanged"] > 0
    assert result["svgs"] >= 1 and result["svgsDrawn"] == result["svgs"], result
    assert any("MatMul" in labels for labels in result["svgNodeLabels"]) or result["svgNodeLabels"]
    assert (tmp_path / "r.dot").read_text().startswith("digraph rewrites {")
