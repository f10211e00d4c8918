"""``edgesmith report``'s page in a real browser: Debian's Chromium, headless, offline.

Two runs of ``chromium --headless``: one loads a copy of the page with a measuring script appended and
dumps the DOM after the load event (every image decoded, at what size; what the page fetched; how tall
it is); the other loads the page itself and takes a screenshot, whose pixels are checked. Both log the
page's console to stderr (``--enable-logging=stderr``), and every host name resolves to nothing, so a
fetch from the network would fail with a console error. ``.ci/run`` installs the ``chromium`` package;
without it the test is skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgesmith.report import build_report
from tests.sdk.test_report import logs  # noqa: F401 (the fixture: real bench logs)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
              pytest.mark.slow]  # starts a browser, twice

PROBE = "edgesmith-console-probe"
MEASURE = """<script>
window.addEventListener("load", () => {
  console.error("%s");
  const found = {
    images: [...document.images].map(i => {
      const r = i.getBoundingClientRect();
      return {alt: i.alt, complete: i.complete, natural: [i.naturalWidth, i.naturalHeight],
              box: [r.left + scrollX, r.top + scrollY, r.width, r.height].map(Math.round)};
    }),
    fetched: performance.getEntriesByType("resource").map(e => e.name),
    height: document.documentElement.scrollHeight,
    fonts: [...document.fonts].map(f => f.family),
  };
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>""" % PROBE


def chromium(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    """Headless Chromium with the flags this machine needs (no sandbox as root, no background networking),
    a fresh profile, the console on stderr, and no host names (nothing can be fetched)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def console(stderr: str) -> list:
    """The page's console messages in Chromium's log."""
    return re.findall(r":CONSOLE[^\]]*\] (.*)", stderr)


def test_report_renders_in_chromium_with_its_plots_and_no_errors(logs, tmp_path):
    page = build_report([logs], tmp_path / "report.html")
    text = page.read_text()
    assert not re.search(r"<script|<link|@import|@font-face|url\(", text, re.I)  # nothing to run or fetch

    probe = tmp_path / "measured.html"
    probe.write_text(text.replace("</body>", MEASURE + "</body>"))
    dumped = chromium(tmp_path, "--dump-dom", probe.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    measured = json.loads(re.search(r'<pre id="measured">(.*?)</pre>', dumped.stdout, re.S).group(1)
                          .replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    logged = console(dumped.stderr)
    assert len(logged) == 1 and logged[0].startswith(f'"{PROBE}", source: {probe.as_uri()}'), logged  # read; only it
    assert len(measured["images"]) == 2
    for image in measured["images"]:  # decoded PNGs, drawn at a real size
        assert image["complete"] and min(image["natural"]) > 200 and min(image["box"][2:]) > 100, image
    assert measured["fetched"] == []  # no script, stylesheet, font or image from anywhere
    assert measured["fonts"] == []  # no web fonts: the system's

    height = min(max(measured["height"], 600), 8000)
    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", f"--window-size=1200,{height}", page.as_uri())
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    assert console(taken.stderr) == []  # no console error (a failed load or decode would log one)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (height, 1200)
    colour = (pixels.max(axis=2) - pixels.min(axis=2)) > 60  # plot lines and markers; text and tables are grey
    ink = pixels.mean(axis=2) < 100  # text, axes, table rules
    assert ink.mean() > 0.005, "the page is blank"
    for image in measured["images"]:  # each plot is drawn where the page laid it out: axes, labels and colour
        left, top, w, h = image["box"]
        assert ink[top:top + h, left:left + w].mean() > 0.01, image["alt"]
        assert colour[top:top + h, left:left + w].sum() > 500, image["alt"]
    outside = colour.copy()
    for image in measured["images"]:
        left, top, w, h = image["box"]
        outside[top:top + h, left:left + w] = False
    assert outside.sum() < 50  # no colour outside the plots (a broken-image icon or a stray style would add some)
