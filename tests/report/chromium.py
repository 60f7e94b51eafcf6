"""Headless Chromium (Debian's ``chromium`` package) driven over the Chrome DevTools protocol.

`Browser` starts the browser with a fresh profile and a debugging port on 127.0.0.1 chosen by the
browser itself, talks to one page through a websocket (``websocket-client``), opens a file at a set
window size, evaluates JavaScript and takes full-page screenshots. Nothing is downloaded: without a
``chromium`` on PATH (or ``$MGTUNE_CHROMIUM``) `find_chromium` returns None and the tests skip.

By hand, for a report's screenshot (``docs/examples/``)::

    python tests/report/chromium.py reports/demo.html docs/examples/report-demo.png
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (  # known to work as root in a container; no network, no first-run or background work
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    """The browser to run: ``$MGTUNE_CHROMIUM``, else the first of `CANDIDATES` on PATH; None if there is none."""
    named = os.environ.get("MGTUNE_CHROMIUM")
    if named:
        return shutil.which(named)
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


class Browser:
    """One headless browser with one page; use as a context manager (the browser and its profile go at exit)."""

    def __init__(self, binary: str, width: int = 1280, height: int = 800) -> None:
        import websocket  # websocket-client: only the browser tests need it

        self.width, self.height = width, height
        self._profile = tempfile.TemporaryDirectory(prefix="mgtune-chromium-")
        profile = Path(self._profile.name)
        self._log = (profile / "chromium.log").open("wb")
        self._proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile / 'profile'}", f"--window-size={width},{height}",
             "about:blank"], stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        try:
            port, path = self._wait_for_port(profile / "profile" / "DevToolsActivePort")
            # suppress_origin: Chromium refuses websocket connections that send an Origin it was not told of
            self._ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=TIMEOUT_S,
                                                   suppress_origin=True)
            self._next_id = 0
            self._events: list[dict[str, Any]] = []
            target = self._call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Page.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def log(self) -> str:
        """What the browser printed (for a failure message)."""
        self._log.flush()
        return (Path(self._profile.name) / "chromium.log").read_text(errors="replace")[-3000:]

    def _wait_for_port(self, port_file: Path) -> tuple[int, str]:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}: {self.log()}")
            lines = port_file.read_text().split() if port_file.is_file() else []
            if len(lines) >= 2:
                return int(lines[0]), lines[1]
            time.sleep(0.05)
        raise RuntimeError(f"chromium opened no debugging port in {TIMEOUT_S:g} s: {self.log()}")

    # ------------------------------------------------------------ the protocol
    def _call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") != self._next_id:
                self._events.append(reply)  # an event (or a late reply): kept for `_wait_event`
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A DevTools command on the page; its result."""
        return self._call(method, self._session, **params)

    def _wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            for i, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(i)
            self._events.append(json.loads(self._ws.recv()))
        raise RuntimeError(f"no {method} within {TIMEOUT_S:g} s")

    # ------------------------------------------------------------ what a test does
    def open(self, page: Path) -> None:
        """Load ``page`` (a file) and wait for its load event (every inline image decoded or failed)."""
        self._events.clear()
        reply = self.call("Page.navigate", url=page.resolve().as_uri())
        if reply.get("errorText"):
            raise RuntimeError(f"{page}: {reply['errorText']}")
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"JavaScript error: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page at the window's width."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": self.width, "height": size["height"], "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            with contextlib.suppress(Exception):  # already gone: the process is ended below either way
                self._call("Browser.close")
            ws.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        self._profile.cleanup()


def main(argv: list[str]) -> int:
    """``chromium.py PAGE OUT.png [WIDTH HEIGHT]``: a full-page screenshot of PAGE."""
    if len(argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    binary = find_chromium()
    if binary is None:
        print("no chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    width, height = (int(argv[2]), int(argv[3])) if len(argv) == 4 else (1280, 800)
    with Browser(binary, width, height) as browser:
        browser.open(Path(argv[0]))
        print(browser.screenshot(Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
