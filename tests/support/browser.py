"""Headless Chromium driven over the DevTools protocol (a websocket from aiohttp): load a
page, type, click, choose a file, wait for a condition, take a screenshot — as a person
would on a phone-sized screen."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(AssertionError):
    """The page did not do what the test waited for, or the browser failed."""


class Page:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        await self._socket.send_str(json.dumps({"id": number, "method": method,
                                                "params": params}))
        while True:
            message = await asyncio.wait_for(self._socket.receive(), timeout=60)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise BrowserError(f"the browser closed the connection ({message.type})")
            data = json.loads(message.data)
            if data.get("id") == number:
                if "error" in data:
                    raise BrowserError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression,
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && "
                            f"location.href === {json.dumps(url)}")

    async def wait_for(self, condition: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not await self.evaluate(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                raise BrowserError(f"waited {timeout:.0f}s for {condition}")
            await asyncio.sleep(0.25)

    async def type(self, element_id: str, text: str) -> None:
        await self.evaluate(f"(() => {{ const e = document.getElementById("
                            f"{json.dumps(element_id)}); e.value = {json.dumps(text)};"
                            " e.dispatchEvent(new Event('input')); })()")

    async def click(self, selector: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def choose_file(self, selector: str, path: Path) -> None:
        root = await self.call("DOM.getDocument")
        node = await self.call("DOM.querySelector", nodeId=root["root"]["nodeId"],
                               selector=selector)
        await self.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(path)])

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png",
                               captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def phone() -> AsyncIterator[Page]:
    """A page in a fresh headless Chromium with a phone's screen (390 x 844, touch)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = await _devtools_port(Path(profile) / "DevToolsActivePort", process)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with session.ws_connect(url, max_msg_size=0) as socket:
                    page = Page(socket)
                    await page.call("Page.enable")
                    await page.call("Runtime.enable")
                    await page.call("Emulation.setDeviceMetricsOverride", width=390,
                                    height=844, deviceScaleFactor=1, mobile=True)
                    yield page
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


def _port_in(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text.splitlines()[0]) if text.strip() else None


async def _devtools_port(path: Path, process: asyncio.subprocess.Process) -> int:
    deadline = time.monotonic() + 60
    while True:
        port = await asyncio.to_thread(_port_in, path)
        if port is not None:
            return port
        if process.returncode is not None:
            raise BrowserError(f"chromium exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise BrowserError("chromium did not open its DevTools port")
        await asyncio.sleep(0.1)
