#!/usr/bin/env python3
"""Open a built page of the book in headless Chromium: screenshot it and check its maths.

    python scripts/screenshot_check.py                       # chapter 1 of _build/html
    python scripts/screenshot_check.py --page book/notation.html --out /tmp/notation.png
    python scripts/screenshot_check.py --html-dir _build/instructor/html

What it does:
1. serves the built site from a local http.server on 127.0.0.1 (a free port);
2. saves a PNG screenshot of the page (default `_build/screenshots/<page>.png`) to look at;
3. loads the page again with `--dump-dom` after letting its JavaScript run, and checks that
   MathJax replaced the TeX by `mjx-container` elements, with no MathJax error nodes;
4. records Chromium's network log and fails if the page asked for anything outside
   127.0.0.1 (a CDN, a font service, ...) or got a 404 for one of its own files.

Chromium is Debian's `chromium` package. When it is missing and this runs as root with apt-get,
it is installed (`apt-get install -y chromium`); `--no-install` turns that off. Exit status 0
when every check passes, 1 when one fails, 2 when Chromium or the built page is missing.
Only the standard library is used, so tests can import this file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
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


@contextlib.contextmanager
def serve(directory: Path):
    """Serve `directory` on 127.0.0.1 on a free port; yields (base_url, request_log)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
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
             timeout: float = 120) -> str:
    """The page's DOM after its scripts ran for `budget_ms` of (virtual) time."""
    args = [f"--virtual-time-budget={budget_ms}", "--dump-dom"]
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
    args = parser.parse_args(argv)

    pages = args.page or [DEFAULT_PAGE]
    chromium = find_chromium() or (None if args.no_install else install_chromium())
    if chromium is None:
        print("screenshot_check: Chromium not found; install it with `apt-get install -y chromium`",
              file=sys.stderr)
        return 2
    html_dir = args.html_dir.resolve()
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


if __name__ == "__main__":
    sys.exit(main())
