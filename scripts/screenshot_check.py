#!/usr/bin/env python3
"""Open a built page of the book in headless Chromium: screenshot it and check its maths.

    python scripts/screenshot_check.py                       # chapter 1 of _build/html
    python scripts/screenshot_check.py --page book/notation.html --out /tmp/notation.png
    python scripts/screenshot_check.py --html-dir _build/instructor/html
    python scripts/screenshot_check.py --axe --all-chapters     # accessibility, light and dark theme
    python scripts/screenshot_check.py --overflow --all-chapters  # what runs off the column, 1280/1440 px

What it does:
1. serves the built site from a local http.server on 127.0.0.1 (a free port);
2. saves a PNG screenshot of the page (default `_build/screenshots/<page>.png`) to look at;
3. loads the page again with `--dump-dom` after letting its JavaScript run, and checks that
   MathJax replaced the TeX by `mjx-container` elements, with no MathJax error nodes;
4. records Chromium's network log and fails if the page asked for anything outside
   127.0.0.1 (a CDN, a font service, ...) or got a 404 for one of its own files;
5. with `--axe`: runs axe-core (vendored in scripts/_vendor/axe-core, WCAG 2.0/2.1 A and AA rules)
   in the page, in the light and the dark theme, and fails on every violating element that is not
   a known theme or ipywidgets one (KNOWN_VIOLATIONS, each with its reason); saves a 1280-pixel
   screenshot of each theme. The test server injects axe into the page it serves; the built site
   itself never carries it;
6. with `--overflow`: at window widths of 1280 and 1440 px (`--width`), lists every `pre`, cell
   output, table and display maths (`mjx-container`) whose content is wider than its box
   (scrollWidth > clientWidth + 1) or whose box runs past the article column, naming the page,
   the cell (its id, found from the first line of its code in the page's notebook) and the excess
   in px; hidden (hide-input) cells are opened first. It also prints the column's width and how
   many characters of code a line shows. Screenshots: `_build/screenshots/<page>.<width>.png`.

Chromium is Debian's `chromium` package. When it is missing and this runs as root with apt-get,
it is installed (`apt-get install -y chromium`); `--no-install` turns that off. Exit status 0
when every check passes, 1 when one fails, 2 when Chromium or the built page is missing.
Only the standard library is used, so tests can import this file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAGE = "notebooks/01_framework_and_losses.html"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
)
# Requests the browser makes for a page that a missing file can explain, not the book.
IGNORED_404 = ("/favicon.ico",)
AXE_JS = Path(__file__).resolve().parent / "_vendor" / "axe-core" / "axe.min.js"
AXE_URL = "/__rankcourse_test__/axe.min.js"
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
THEMES = ("light", "dark")


@dataclass(frozen=True)
class KnownViolation:
    """A violation that the book's theme or ipywidgets causes, not the course's own content.

    A violating element matches when the rule is `rule` and its CSS path or its HTML contains
    `element`. Each entry says why it is left: the course does not write that markup.
    """

    rule: str
    element: str
    reason: str


KNOWN_VIOLATIONS = (
    KnownViolation("label-content-name-mismatch", "search-button",
                   "sphinx-book-theme's search button: its aria-label 'Search' differs from its "
                   "visible text (the Ctrl+K keyboard hint); theme markup"),
    KnownViolation("label-content-name-mismatch", "theme-switch-button",
                   "pydata-sphinx-theme's light/dark switch: its label names the current mode, "
                   "its visible text is an icon; theme markup"),
    KnownViolation("label-content-name-mismatch", 'aria-label="Toggle hidden content"',
                   "myst-nb 1.4's toggle of a hidden code cell: it writes <summary aria-label="
                   "\"Toggle hidden content\"> around the visible text 'Show code cell source' "
                   "(myst_nb/sphinx_.py); toolchain markup, the same on every hide-input cell"),
    KnownViolation("aria-input-field-name", "noUi-handle",
                   "ipywidgets 8's slider (html-manager 1.0.15 draws it with noUiSlider): the handle "
                   "has role=slider and no accessible name; the slider's label (its description, "
                   "e.g. the Greek letter) is a separate element; widget markup"),
)


def find_chromium() -> str | None:
    """Path of a Chromium executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium() -> str | None:
    """Install Debian's chromium with apt-get when running as root; return its path or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(cmd, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=False)
        subprocess.run(cmd, env=env, check=False)
    return find_chromium()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that records (path, status) instead of printing a log."""

    requests: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.requests.append((self.path, int(code)))  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


class _InjectingHandler(_QuietHandler):
    """Also serves the vendored axe-core at AXE_URL and puts `head`/`body` snippets into HTML pages."""

    head_snippet = ""
    body_snippet = ""

    def send_head(self):  # type: ignore[override]
        path = urlsplit(self.path).path
        if path == AXE_URL:
            return self._send_bytes(AXE_JS.read_bytes(), "text/javascript")
        if path.endswith(".html") and (self.head_snippet or self.body_snippet):
            local = Path(self.translate_path(path))
            if local.is_file():
                page = local.read_text(encoding="utf8")
                page = page.replace("<head>", "<head>" + self.head_snippet, 1)
                page = page.replace("</body>", self.body_snippet + "</body>", 1)
                return self._send_bytes(page.encode("utf8"), "text/html; charset=utf-8")
        return super().send_head()

    def _send_bytes(self, data: bytes, content_type: str):
        import io

        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)


@contextlib.contextmanager
def serve(directory: Path, *, head: str = "", body: str = ""):
    """Serve `directory` on 127.0.0.1 on a free port; yields (base_url, request_log).

    `head` and `body` are put at the start of each HTML page's <head> and the end of its <body>
    (the test's own scripts; the files on disk are not changed).
    """
    if head or body:
        handler_class = type("_Handler", (_InjectingHandler,), {"head_snippet": head, "body_snippet": body})
    else:
        handler_class = _QuietHandler
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run_chromium(chromium: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="rankcourse-chromium-") as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(chromium: str, url: str, out: Path, *, width: int = 1280, height: int = 1600,
               budget_ms: int = 10_000, timeout: float = 120) -> Path:
    """Save a PNG of `url` after `budget_ms` of (virtual) page time."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    proc = _run_chromium(
        chromium,
        [f"--screenshot={out}", f"--window-size={width},{height}",
         f"--virtual-time-budget={budget_ms}", url],
        timeout,
    )
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return out


def dump_dom(chromium: str, url: str, *, netlog: Path | None = None, budget_ms: int = 10_000,
             timeout: float = 120, width: int | None = None) -> str:
    """The page's DOM after its scripts ran for `budget_ms` of (virtual) time (window `width` px wide)."""
    args = [f"--virtual-time-budget={budget_ms}", "--dump-dom"]
    if width is not None:
        args.insert(0, f"--window-size={width},1600")
    if netlog is not None:
        args.insert(0, f"--log-net-log={netlog}")
    proc = _run_chromium(chromium, [*args, url], timeout)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def page_requests(netlog: Path, page_host: str = "127.0.0.1") -> list[str]:
    """URLs the page itself requested, from a Chromium net log.

    Chromium also talks to Google services on its own (account and time checks) even with
    background networking disabled; those requests carry no page in their network isolation
    key, so keeping only requests isolated under the page's site leaves what the page asked for.
    """
    data = json.loads(netlog.read_text(encoding="utf8", errors="replace") or "{}")
    names = {v: k for k, v in data.get("constants", {}).get("logEventTypes", {}).items()}
    urls: list[str] = []
    for event in data.get("events", []):
        if names.get(event.get("type")) != "URL_REQUEST_START_JOB":
            continue
        params = event.get("params", {})
        url = params.get("url", "")
        key = str(params.get("network_isolation_key", ""))
        if url and f"://{page_host}" in key:
            urls.append(url)
    return urls


@dataclass
class PageCheck:
    """What one page showed in the browser."""

    page: str
    math_elements: int
    math_errors: int
    external_requests: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    screenshot: str | None = None

    def problems(self, min_math: int = 1) -> list[str]:
        found = []
        if self.math_elements < min_math:
            found.append(f"{self.page}: {self.math_elements} mjx-container elements, expected at least {min_math} "
                         "(MathJax did not run or did not typeset)")
        if self.math_errors:
            found.append(f"{self.page}: {self.math_errors} MathJax error nodes (mjx-merror)")
        if self.external_requests:
            found.append(f"{self.page}: requests outside 127.0.0.1: {self.external_requests}")
        if self.missing_files:
            found.append(f"{self.page}: files the page asked for but the site lacks: {self.missing_files}")
        return found


def count_math(dom: str) -> tuple[int, int]:
    """(number of <mjx-container> elements, number of <mjx-merror> elements) in a DOM dump."""
    return len(re.findall(r"<mjx-container\b", dom)), len(re.findall(r"<mjx-merror\b", dom))


def check_page(chromium: str, html_dir: Path, page: str, *, shot: Path | None = None,
               budget_ms: int = 10_000) -> PageCheck:
    """Serve `html_dir`, open `page` in Chromium, and report what it showed and requested."""
    if not (html_dir / page).is_file():
        raise FileNotFoundError(f"{html_dir / page} does not exist: build the book first")
    with serve(html_dir) as (base, log), tempfile.TemporaryDirectory() as tmp:
        url = f"{base}/{page}"
        netlog = Path(tmp) / "netlog.json"
        dom = dump_dom(chromium, url, netlog=netlog, budget_ms=budget_ms)
        if shot is not None:
            screenshot(chromium, url, shot, budget_ms=budget_ms)
        n_math, n_err = count_math(dom)
        external = sorted({u for u in page_requests(netlog) if urlsplit(u).hostname != "127.0.0.1"})
        missing = sorted({path for path, status in log
                          if status == 404 and urlsplit(path).path not in IGNORED_404})
    return PageCheck(page, n_math, n_err, external, missing, str(shot) if shot else None)


def theme_script(theme: str) -> str:
    """A <head> script that opens the page in `theme` ("light" or "dark"), as the theme switch would."""
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    return f'<script>localStorage.setItem("mode","{theme}");localStorage.setItem("theme","{theme}");</script>'


def axe_script(delay_ms: int = 4000) -> str:
    """A <body> script that runs axe once the page's own scripts (MathJax, widgets) had time to run,
    and writes the violations as JSON into <pre id="rankcourse-axe">."""
    tags = json.dumps(list(AXE_TAGS))
    return (
        f'<script src="{AXE_URL}"></script><script>'
        "setTimeout(function(){axe.run(document,{runOnly:{type:'tag',values:" + tags + "},"
        "resultTypes:['violations']}).then(function(r){"
        "var out=r.violations.map(function(v){return {id:v.id,impact:v.impact,help:v.help,"
        "nodes:v.nodes.map(function(n){return {target:n.target.join(' '),html:n.html.slice(0,300),"
        "summary:(n.failureSummary||'').slice(0,400)}})}});"
        "var pre=document.createElement('pre');pre.id='rankcourse-axe';pre.hidden=true;"
        "pre.textContent=JSON.stringify(out);document.body.appendChild(pre);"
        "},function(e){var pre=document.createElement('pre');pre.id='rankcourse-axe';pre.hidden=true;"
        "pre.textContent=JSON.stringify({error:String(e)});document.body.appendChild(pre);});"
        f"}},{delay_ms});</script>"
    )


@dataclass
class AxeNode:
    """One element that breaks one axe rule."""

    rule: str
    impact: str | None
    help: str
    target: str
    html: str
    summary: str = ""
    known: KnownViolation | None = None

    def describe(self) -> str:
        detail = " ".join(self.summary.split())
        return f"{self.rule} ({self.impact}): {self.target}  {self.html[:160]}  -- {self.help}; {detail}"


def classify(violations: list[dict], known: tuple[KnownViolation, ...] = KNOWN_VIOLATIONS) -> list[AxeNode]:
    """Each violating element of an axe result, matched against the known theme/widget ones."""
    nodes = []
    for v in violations:
        for n in v.get("nodes", []):
            node = AxeNode(v["id"], v.get("impact"), v.get("help", ""), n.get("target", ""), n.get("html", ""),
                           n.get("summary", ""))
            node.known = next((k for k in known if k.rule == node.rule
                               and (k.element in node.target or k.element in node.html)), None)
            nodes.append(node)
    return nodes


def parse_axe_result(dom: str) -> list[dict]:
    """The violations that axe_script() wrote into the dumped DOM."""
    match = re.search(r'<pre id="rankcourse-axe"[^>]*>(.*?)</pre>', dom, re.S)
    if match is None:
        raise RuntimeError("axe did not finish in the page's time budget (no <pre id=rankcourse-axe>)")
    result = json.loads(html.unescape(match.group(1)))
    if isinstance(result, dict):
        raise RuntimeError(f"axe failed in the page: {result.get('error')}")
    return result


def axe_check(chromium: str, html_dir: Path, page: str, *, theme: str = "light", shot: Path | None = None,
              budget_ms: int = 20_000) -> list[AxeNode]:
    """Run axe-core over `page` in `theme`; optionally save a 1280-pixel screenshot of it."""
    if not (html_dir / page).is_file():
        raise FileNotFoundError(f"{html_dir / page} does not exist: build the book first")
    if not AXE_JS.is_file():
        raise FileNotFoundError(f"{AXE_JS} is missing: see scripts/_vendor/axe-core/VENDORED.txt")
    head = theme_script(theme)
    with serve(html_dir, head=head, body=axe_script()) as (base, _log):
        dom = dump_dom(chromium, f"{base}/{page}", budget_ms=budget_ms, width=1280)
    if shot is not None:
        with serve(html_dir, head=head) as (base, _log):
            screenshot(chromium, f"{base}/{page}", shot, width=1280)
    return classify(parse_axe_result(dom))


# ------------------------------------------------------------------ what runs off the column

WIDTHS = (1280, 1440)
OVERFLOW_ID = "rankcourse-overflow"
FIRST_LINE_CHARS = 120  # of a cell's first line of code, by which an overflow names its cell

# Measured in the page after its scripts ran: every `pre`, cell output, table and display maths
# of the article whose content is wider than its own box (scrollWidth > clientWidth + 1) or whose
# box runs past the article column. Collapsed <details> (hide-input cells) are opened first: a
# student opens them. Where an overflowing element holds another overflowing one, only the inner
# one is reported (it is the one that scrolls). Also measured: the column's width, the code font
# size and how many characters of code a code cell's `pre` shows.
_OVERFLOW_JS = r"""
function rankcourseOverflow(){
  var article=document.querySelector('article.bd-article')||document.querySelector('article')
    ||document.body;
  var hidden=[];
  document.querySelectorAll('details').forEach(function(d){
    if(!d.open){d.open=true;hidden.push(d);}});
  var cs=getComputedStyle(article), ar=article.getBoundingClientRect();
  var colLeft=ar.left+parseFloat(cs.paddingLeft), colRight=ar.right-parseFloat(cs.paddingRight);
  var sel='pre, .cell_output, .cell_output .output, table, mjx-container[display="true"]';
  var found=[];
  article.querySelectorAll(sel).forEach(function(el){
    if(el.id==='__OUT__'||el.closest('#__OUT__')) return;
    var r=el.getBoundingClientRect();
    if(r.width===0&&r.height===0) return;
    var scroll=el.scrollWidth-el.clientWidth;
    var past=Math.max(r.right-colRight, colLeft-r.left);
    var over=Math.max(scroll>1?scroll:0, past>1?past:0);
    if(over>0) found.push({el:el, over:over, scroll:scroll, past:past});
  });
  found=found.filter(function(f){return !found.some(function(g){
    return g!==f && f.el.contains(g.el);});});
  function kind(el){
    var t=el.tagName.toLowerCase();
    if(t==='mjx-container') return 'maths';
    if(t==='table') return 'table';
    if(el.closest('.cell_output')) return t==='pre'?'output pre':'output';
    if(el.closest('.cell_input')) return 'code';
    return t;
  }
  var cells=Array.prototype.slice.call(article.querySelectorAll('div.cell'));
  var out=found.map(function(f){
    var el=f.el, cell=el.closest('div.cell'), sec=el.closest('section');
    var first='';
    if(cell){var pre=cell.querySelector('.cell_input pre');
      if(pre){first=(pre.textContent.split('\n').find(function(l){return l.trim();})||'').trim();}}
    var snippet=(el.textContent||'').replace(/\s+/g,' ').trim().slice(0,80);
    return {kind:kind(el), tag:el.tagName.toLowerCase(), overflow:Math.round(f.over),
      scroll_width:el.scrollWidth, client_width:el.clientWidth,
      cell:cell?cells.indexOf(cell):null, cell_classes:cell?cell.className:'',
      cell_first_line:first.slice(0,__FIRST__), section:sec?sec.id:'',
      hidden:hidden.some(function(d){return d.contains(el);}), text:snippet};
  });
  var chars=null, charsMin=null, fontPx=null, cw=null;
  article.querySelectorAll('.cell_input pre').forEach(function(code){
    var pcs=getComputedStyle(code);
    if(cw===null){var probe=document.createElement('span');
      probe.textContent='0123456789'.repeat(10); probe.style.whiteSpace='pre';
      code.appendChild(probe); cw=probe.getBoundingClientRect().width/100; code.removeChild(probe);
      fontPx=parseFloat(pcs.fontSize);}
    var n=Math.floor((code.clientWidth-parseFloat(pcs.paddingLeft)-parseFloat(pcs.paddingRight))/cw);
    if(code.clientWidth>0){chars=chars===null?n:Math.max(chars,n); charsMin=charsMin===null?n:Math.min(charsMin,n);}
  });
  var images=Array.prototype.slice.call(article.querySelectorAll('img')).map(function(img){
    var box=img.parentElement, bcs=getComputedStyle(box), fig=img.closest('figure');
    var styled=/^[0-9.]+px$/.test(img.style.width)?img.style.width.slice(0,-2):null;
    return {src:(img.getAttribute('src')||'').slice(0,200), width_attr:styled||img.getAttribute('width'),
      natural_px:img.naturalWidth, shown_px:img.getBoundingClientRect().width,
      room_px:box.clientWidth-parseFloat(bcs.paddingLeft)-parseFloat(bcs.paddingRight),
      figure:fig?(fig.id||''):'', alt:(img.getAttribute('alt')||'').slice(0,80)};
  });
  hidden.forEach(function(d){d.open=false;});
  return {column_px:Math.round(colRight-colLeft), code_font_px:fontPx, code_chars:chars,
    code_chars_min:charsMin,
    window_px:window.innerWidth, overflows:out, images:images};
}
""".replace("__OUT__", OVERFLOW_ID).replace("__FIRST__", str(FIRST_LINE_CHARS))


def overflow_script(delay_ms: int = 3000) -> str:
    """A <body> script that measures overflows (see _OVERFLOW_JS) once MathJax had time to typeset,
    and writes them as JSON into <pre id="rankcourse-overflow">."""
    return (
        "<script>" + _OVERFLOW_JS + "setTimeout(function(){var r;"
        "try{r=rankcourseOverflow();}catch(e){r={error:String(e)};}"
        f"var pre=document.createElement('pre');pre.id='{OVERFLOW_ID}';pre.hidden=true;"
        "pre.textContent=JSON.stringify(r);document.body.appendChild(pre);"
        f"}},{delay_ms});</script>"
    )


@dataclass
class Overflow:
    """One element of a page that runs off the column, at one window width."""

    page: str
    width: int
    kind: str
    overflow: int
    cell: int | None = None
    cell_id: str | None = None
    cell_first_line: str = ""
    section: str = ""
    hidden: bool = False
    text: str = ""
    scroll_width: int = 0
    client_width: int = 0

    def describe(self) -> str:
        where = f"cell {self.cell_id}" if self.cell_id else (
            f"code cell #{self.cell} ({self.cell_first_line[:60]!r})" if self.cell is not None
            else f"section #{self.section}")
        hidden = " (in a hidden cell)" if self.hidden else ""
        return (f"{self.page} @{self.width}px: {self.kind} in {where}{hidden} is {self.overflow} px too wide "
                f"(content {self.scroll_width} px in a {self.client_width} px box): {self.text[:60]!r}")


@dataclass
class ShownImage:
    """An image of a page as the browser shows it: `css_px` is the width its page asks for (its
    style's or its `width` attribute's width: myst-nb writes the width that course_png gives, half
    the 2x PNG's pixels, as `style="width: Npx"`; else the PNG's own width),
    `shown_px` the width it gets, `room_px` the width its container offers."""

    page: str
    width: int
    src: str
    figure: str
    css_px: float
    shown_px: float
    room_px: float
    alt: str = ""

    def describe(self) -> str:
        name = f"figure {self.figure}" if self.figure else f"image {self.src[:60]}"
        return (f"{self.page} @{self.width}px: {name} is {self.css_px:.0f} CSS px wide, shown at "
                f"{self.shown_px:.0f} px (room {self.room_px:.0f} px)")


@dataclass
class WidthReport:
    """What one page measured at one window width."""

    page: str
    width: int
    column_px: int
    code_font_px: float | None
    code_chars: int | None  # characters of code a line shows in the widest code cell (a plain one)
    overflows: list[Overflow]
    images: list[ShownImage] = field(default_factory=list)
    code_chars_min: int | None = None  # ... in the narrowest (a hidden cell, opened)


def parse_overflow_result(dom: str) -> dict:
    """The measures that overflow_script() wrote into the dumped DOM."""
    match = re.search(rf'<pre id="{OVERFLOW_ID}"[^>]*>(.*?)</pre>', dom, re.DOTALL)
    if match is None:
        raise RuntimeError("the overflow measure did not finish in the page's time budget "
                           f"(no <pre id={OVERFLOW_ID}>)")
    result = json.loads(html.unescape(match.group(1)))
    if "error" in result:
        raise RuntimeError(f"the overflow measure failed in the page: {result['error']}")
    return result


def cell_ids_by_first_line(notebook: Path) -> dict[str, str | None]:
    """First non-blank line of each code cell's source (its first FIRST_LINE_CHARS characters, as the
    page reports it) -> that cell's id (None when two cells start alike)."""
    nb = json.loads(notebook.read_text(encoding="utf8"))
    ids: dict[str, str | None] = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")[:FIRST_LINE_CHARS]
        ids[first] = None if first in ids else cell.get("id")
    return ids


def overflow_check(chromium: str, html_dir: Path, page: str, *, width: int = 1280,
                   notebook: Path | None = None, shot: Path | None = None,
                   budget_ms: int = 15_000) -> WidthReport:
    """Open `page` in a window `width` px wide and report what runs off the article column.

    `notebook` (the page's source .ipynb), when given, names each overflowing cell by its id.
    """
    if not (html_dir / page).is_file():
        raise FileNotFoundError(f"{html_dir / page} does not exist: build the book first")
    with serve(html_dir, body=overflow_script()) as (base, _log):
        dom = dump_dom(chromium, f"{base}/{page}", budget_ms=budget_ms, width=width)
    if shot is not None:
        with serve(html_dir) as (base, _log):
            screenshot(chromium, f"{base}/{page}", shot, width=width)
    result = parse_overflow_result(dom)
    ids = cell_ids_by_first_line(notebook) if notebook is not None and notebook.is_file() else {}
    found = []
    for o in result["overflows"]:
        found.append(Overflow(page, width, o["kind"], int(o["overflow"]), o["cell"],
                              ids.get(o["cell_first_line"]), o["cell_first_line"], o["section"],
                              bool(o["hidden"]), o["text"], int(o["scroll_width"]), int(o["client_width"])))
    images = []
    for i in result.get("images", []):
        css = float(i["width_attr"]) if (i["width_attr"] or "").strip().replace(".", "", 1).isdigit() \
            else float(i["natural_px"])
        images.append(ShownImage(page, width, i["src"], i["figure"], css, float(i["shown_px"]),
                                 float(i["room_px"]), i["alt"]))
    return WidthReport(page, width, int(result["column_px"]), result["code_font_px"], result["code_chars"],
                       found, images, result.get("code_chars_min"))


def notebook_of(page: str, root: Path = ROOT) -> Path:
    """The source notebook of a chapter page (notebooks/NN_x.html -> notebooks/NN_x.ipynb)."""
    return root / Path(page).with_suffix(".ipynb")


def chapter_pages(html_dir: Path) -> list[str]:
    """The chapter pages of a built book: notebooks/NN_*.html (chapters 1 to 10 and on) and the appendix A_*."""
    found = sorted(p.relative_to(html_dir).as_posix() for p in (html_dir / "notebooks").glob("*.html")
                   if re.match(r"(\d\d|A)_", p.name))
    return [p for p in found if "/student/" not in p]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html-dir", type=Path, default=ROOT / "_build" / "html",
                        help="built site to serve (default: _build/html)")
    parser.add_argument("--page", action="append", default=None,
                        help=f"page to check, relative to the site (repeatable; default: {DEFAULT_PAGE})")
    parser.add_argument("--out", type=Path, default=None,
                        help="screenshot path when one page is checked (default: _build/screenshots/<page>.png)")
    parser.add_argument("--min-math", type=int, default=1, help="fewest mjx-container elements a page must show")
    parser.add_argument("--budget-ms", type=int, default=10_000, help="virtual time the page's scripts get")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install chromium when missing")
    parser.add_argument("--axe", action="store_true",
                        help="run axe-core over the pages in both themes instead of the maths/network checks")
    parser.add_argument("--overflow", action="store_true",
                        help="report every pre, output, table and display maths wider than the article "
                             "column, at each --width, instead of the maths/network checks")
    parser.add_argument("--width", type=int, action="append", default=None,
                        help=f"window width in px for --overflow (repeatable; default: {WIDTHS})")
    parser.add_argument("--all-chapters", action="store_true", help="check every chapter page")
    args = parser.parse_args(argv)

    pages = args.page or [DEFAULT_PAGE]
    if args.all_chapters:
        pages = chapter_pages(args.html_dir.resolve())
    chromium = find_chromium() or (None if args.no_install else install_chromium())
    if chromium is None:
        print("screenshot_check: Chromium not found; install it with `apt-get install -y chromium`",
              file=sys.stderr)
        return 2
    html_dir = args.html_dir.resolve()
    if args.axe:
        return _main_axe(chromium, html_dir, pages)
    if args.overflow:
        return _main_overflow(chromium, html_dir, pages, tuple(args.width or WIDTHS))
    problems: list[str] = []
    for page in pages:
        shot = args.out if (args.out and len(pages) == 1) else (
            ROOT / "_build" / "screenshots" / (page.replace("/", "__").removesuffix(".html") + ".png"))
        try:
            result = check_page(chromium, html_dir, page, shot=shot, budget_ms=args.budget_ms)
        except FileNotFoundError as exc:
            print(f"screenshot_check: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(result.__dict__, indent=2))
        problems += result.problems(args.min_math)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not problems:
        print(f"screenshot_check: OK ({len(pages)} page(s); maths typeset locally, no external requests)")
    return 1 if problems else 0


def _main_overflow(chromium: str, html_dir: Path, pages: list[str], widths: tuple[int, ...]) -> int:
    total = 0
    for page in pages:
        for width in widths:
            name = page.replace("/", "__").removesuffix(".html")
            shot = ROOT / "_build" / "screenshots" / f"{name}.{width}.png"
            report = overflow_check(chromium, html_dir, page, width=width, notebook=notebook_of(page), shot=shot)
            total += len(report.overflows)
            kinds: dict[str, int] = {}
            for o in report.overflows:
                kinds[o.kind] = kinds.get(o.kind, 0) + 1
            print(f"{page} @{width}px: column {report.column_px} px, code {report.code_font_px} px font, "
                  f"{report.code_chars_min}-{report.code_chars} characters of code a line (hidden-plain cell); "
                  f"{len(report.overflows)} overflow(s) {kinds}")
            for o in report.overflows:
                print(f"  FAIL {o.describe()}")
    print(f"overflow: {total} element(s) wider than the column over {len(pages)} page(s) at {widths} px")
    return 1 if total else 0


def _main_axe(chromium: str, html_dir: Path, pages: list[str]) -> int:
    own: list[str] = []
    counts = {theme: [0, 0] for theme in THEMES}  # theme -> [course's own, known theme/widget]
    for page in pages:
        for theme in THEMES:
            shot = ROOT / "_build" / "screenshots" / f"{page.replace('/', '__').removesuffix('.html')}.{theme}.png"
            nodes = axe_check(chromium, html_dir, page, theme=theme, shot=shot if page == pages[0] else None)
            mine = [n for n in nodes if n.known is None]
            counts[theme][0] += len(mine)
            counts[theme][1] += len(nodes) - len(mine)
            print(f"{page} [{theme}]: {len(mine)} violating elements of the course's own, "
                  f"{len(nodes) - len(mine)} known theme/widget ones")
            for node in nodes:
                tag = "KNOWN" if node.known else "FAIL"
                print(f"  {tag} {node.describe()}")
            own += [f"{page} [{theme}]: {n.describe()}" for n in mine]
    for theme, (n_own, n_known) in counts.items():
        print(f"axe [{theme}]: {n_own} of the course's own, {n_known} known theme/widget ones, "
              f"over {len(pages)} page(s)")
    return 1 if own else 0


if __name__ == "__main__":
    sys.exit(main())
