"""A headless Chromium driven through the DevTools protocol, to test the HTML pages for real.

No extra package: the protocol is JSON over one WebSocket, and the few dozen lines of a
WebSocket client it needs are below (RFC 6455: masked client frames, fragmented and large
server frames, ping/pong). The browser is Debian's ``chromium`` (``make test`` installs it);
``find_chromium`` returns None where there is none.

    with Browser(chromium) as browser:
        page = browser.open(path, width=390, height=844, mobile=True)
        page.console, page.requests             # console errors, every URL it fetched
        page.evaluate("document.title")
        png = page.screenshot()
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

TIMEOUT = 30.0  # seconds for the browser to start, a page to load, a command to answer

# What `Page.elements` measures of each element matching a selector.
ELEMENTS_JS = """(selector) => Array.from(document.querySelectorAll(selector)).map(el => {
  const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  return {
    width: r.width, height: r.height, left: r.left + scrollX, right: r.right + scrollX,
    visible: r.width > 0 && r.height > 0 && s.visibility !== "hidden" &&
      s.display !== "none" && parseFloat(s.opacity) > 0,
    loaded: el.tagName === "IMG" ? el.complete && el.naturalWidth > 0 : null,
    alt: el.getAttribute("alt"), text: el.textContent,
  };
})"""


def find_chromium() -> str | None:
    """The Chromium executable on PATH (``$GRU_CHROMIUM`` first), or None."""
    for name in (os.environ.get("GRU_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class WebSocket:
    """The client side of one WebSocket connection, text messages only."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode("ascii"))
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("WebSocket: the browser closed the connection")
            response += chunk
        head, self.buffer = response.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"WebSocket: upgrade refused: {head.decode(errors='replace')}")

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("WebSocket: the browser closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        # XOR with the repeated mask, as one big integer (fast for long payloads).
        repeated = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
            n, "big"
        )
        self.sock.sendall(head + mask + masked)

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode("utf-8"))

    def recv(self) -> str:
        """The next whole text message (answering pings on the way)."""
        parts = []
        while True:
            first, second = self._read(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            payload = self._read(n)  # a server never masks
            if opcode == 0x9:
                self._frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("WebSocket: the browser closed the connection")
            if opcode in (0x0, 0x1, 0x2):
                parts.append(payload)
                if first & 0x80:  # FIN
                    return b"".join(parts).decode("utf-8")

    def close(self) -> None:
        try:
            self._frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Browser:
    """One headless Chromium process with a DevTools connection; open pages with `open`."""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="gru-chromium-")
        self.log = open(Path(self.profile) / "stderr.log", "wb")  # closed in close()
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",  # the browser picks a free port and writes it down
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        try:
            port, path = self._wait_for_port()
            self.ws = WebSocket("127.0.0.1", port, path)
        except BaseException:
            self.close()
            raise

    def _wait_for_port(self) -> tuple[int, str]:
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"chromium exited with code {self.process.returncode}: "
                    + (Path(self.profile) / "stderr.log").read_text(errors="replace")[-2000:]
                )
            lines = port_file.read_text().split("\n") if port_file.is_file() else []
            if len(lines) >= 2 and lines[0].strip() and lines[1].strip():
                return int(lines[0]), lines[1].strip()
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no DevToolsActivePort within {TIMEOUT} s")

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Call a DevTools method and return its result; events met meanwhile are kept."""
        message = {"id": next(self.ids), "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"DevTools {method}: no answer within {TIMEOUT} s")

    def wait_for(self, method: str, session: str) -> dict:
        """The first event ``method`` of ``session``, already received or still to come."""
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(f"DevTools: no {method} within {TIMEOUT} s")

    def open(self, path, *, width: int = 1280, height: int = 900, mobile: bool = False) -> Page:
        """Load the file ``path`` in a new tab of the given viewport and wait for its load."""
        url = Path(path).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session=session,
        )
        start = len(self.events)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        self.send("Runtime.evaluate", {"expression": "1"}, session=session)  # let events drain
        return Page(self, target, session, url, start)

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            try:
                self.send("Browser.close")
            except (OSError, RuntimeError, TimeoutError, ConnectionError):
                pass
            self.ws.close()
            self.ws = None
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One loaded page: what it logged and fetched, and ways to look at it."""

    def __init__(self, browser: Browser, target: str, session: str, url: str, start: int):
        self.browser, self.target, self.session, self.url = browser, target, session, url
        self._start = start

    def _events(self, method: str) -> list[dict]:
        return [
            e["params"]
            for e in self.browser.events[self._start :]
            if e.get("method") == method and e.get("sessionId") == self.session
        ]

    @property
    def console(self) -> list[str]:
        """Every console error or warning, uncaught exception and error log entry."""
        found = [
            f"console.{p['type']}: "
            + " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
            for p in self._events("Runtime.consoleAPICalled")
            if p["type"] in ("error", "warning", "assert")
        ]
        found += [
            f"log {p['entry']['level']}: {p['entry']['text']}"
            for p in self._events("Log.entryAdded")
            if p["entry"]["level"] in ("error", "warning")
        ]
        found += [
            f"exception: {p['exceptionDetails'].get('exception', {}).get('description', p['exceptionDetails'].get('text'))}"
            for p in self._events("Runtime.exceptionThrown")
        ]
        return found

    @property
    def requests(self) -> list[str]:
        """The URL of every request the page made (data: URIs included)."""
        return [p["request"]["url"] for p in self._events("Network.requestWillBeSent")]

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression evaluated in the page."""
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def elements(self, selector: str) -> list[dict]:
        """For each element matching ``selector``: its size, whether it is visible (a box with
        area, not hidden, not transparent, inside the page), and for images whether they
        decoded and their alt text."""
        return self.evaluate(f"({ELEMENTS_JS})({json.dumps(selector)})")

    def screenshot(self, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or of the whole page)."""
        params = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
            )
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
