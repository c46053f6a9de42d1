"""The security review's attacks, re-run against `python -m frontend` as operators run it.

    .venv/bin/python -m benchmarks.attacks [--slow-seconds 20]

One server process with its embedded Triton, attacked row by row; for each row what was done,
what the clients saw, how long recovery took, and what was lost. Then the faults-survived
table: injected fault, client view, recovery time, losses. The frontend's RSS is read from
/proc before the first attack and after the last. Writes ``benchmarks/results/attacks.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import signal
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import av
import numpy as np
from PIL import Image

from benchmarks.load.servers import IV, KEY, Server, start_facegate
from benchmarks.paths import DATA, RESULTS
from frontend.contract.fields import FACE_QUALITY, IMAGE_VERIFICATION, SILENT_DETECTION
from frontend.crypto import KeyRing

PHOTO = DATA / "faces/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
RING = KeyRing.from_strings([KEY], IV)
FORGED = "2026-12-03 10:00:00,000 ERROR frontend: FORGED-LINE"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _proc_children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append((int(entry.name), stat[stat.index("(") + 1:stat.rindex(")")]))
    return found


def _group(pgid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += os.getpgid(int(entry.name)) == pgid
            except OSError:
                pass
    return count


class Attack:
    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session
        self.photo = RING.encrypt(PHOTO.read_bytes())

    async def post(self, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        async with self.session.post(self.server.url + path, data=io.BytesIO(body),
                                     headers={"Content-Type": content_type}) as response:
            try:
                return response.status, await response.json(content_type=None)
            except (json.JSONDecodeError, aiohttp.ContentTypeError):
                return response.status, {}

    async def verify(self) -> int:
        body = urlencode({"first_encrypted_image": self.photo,
                          "second_encrypted_image": self.photo}).encode()
        try:
            return (await self.post(IMAGE_VERIFICATION.path, body,
                                    "application/x-www-form-urlencoded"))[1].get("code", 0)
        except aiohttp.ClientError:
            return 0


async def slow_clients(attack: Attack, seconds: float) -> dict:
    """64 connections sending a body a byte every 2 s, 200 half-sent headers, and a client."""
    url = attack.server.url.removeprefix("http://")
    host, port = url.split(":")
    stop = asyncio.Event()

    async def trickle() -> bool:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST {IMAGE_VERIFICATION.path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n".encode())
        closed = False
        try:
            while not stop.is_set():
                writer.write(b"a")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 2.0) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
        except (ConnectionError, OSError):
            closed = True
        writer.close()
        return closed

    async def half_headers() -> bool:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST {IMAGE_VERIFICATION.path} HTTP/1.1\r\nHost: x\r\n".encode())
        try:
            closed = await asyncio.wait_for(reader.read(), seconds) == b""
        except TimeoutError:
            closed = False
        writer.close()
        return closed

    slow = [asyncio.create_task(trickle()) for _ in range(64)]
    halves = [asyncio.create_task(half_headers()) for _ in range(200)]
    await asyncio.sleep(1)
    codes, started = [], time.monotonic()
    while time.monotonic() - started < seconds:
        codes.append(await attack.verify())
    stop.set()
    trickled_closed = sum(await asyncio.gather(*slow))
    headers_closed = sum(await asyncio.gather(*halves))
    return {"served_client_codes": {str(c): codes.count(c) for c in set(codes)},
            "slow_bodies_cut_off": trickled_closed, "half_headers_closed": headers_closed,
            "seconds": seconds}


async def killed_triton(attack: Attack) -> dict:
    """kill -9 of tritonserver while a client keeps verifying."""
    frontend = attack.server.process.pid
    (triton, _), = [c for c in _proc_children(frontend) if c[1] == "tritonserver"]
    group_before = _group(triton)
    os.kill(triton, signal.SIGKILL)
    killed = time.monotonic()
    codes, health = [], []
    while True:
        code = await attack.verify()
        codes.append(code)
        async with attack.session.get(attack.server.url + "/healthz") as response:
            health.append(response.status)
        if code == 1000:
            break
        if time.monotonic() - killed > 60:
            break
    recovered_s = time.monotonic() - killed
    await asyncio.sleep(1)
    return {
        "recovered_s": round(recovered_s, 2), "client_codes": {str(c): codes.count(c) for c in
                                                                set(codes)},
        "healthz_during": sorted(set(health)), "stub_processes_before": group_before - 1,
        "left_in_old_group": _group(triton),
        "tritonservers_now": sum(n == "tritonserver" for _, n in _proc_children(frontend)),
    }


async def bad_bodies(attack: Attack) -> dict:
    rows = {}
    form = "application/x-www-form-urlencoded"
    rows["form body not UTF-8"] = await attack.post(
        IMAGE_VERIFICATION.path, b"first_encrypted_image=\xff\xfe&second_encrypted_image=\xff",
        form)
    rows["JSON nested 100,000 deep"] = await attack.post(
        IMAGE_VERIFICATION.path, b"[" * 100_000 + b"]" * 100_000, "application/json")
    rows["100,000 tiny fields"] = await attack.post(
        IMAGE_VERIFICATION.path, b"&".join(b"f%d=1" % i for i in range(100_000)), form)
    forged = json.dumps({f"x\n{FORGED}": 1, "first_encrypted_image": f"a\n{FORGED}",
                         "second_encrypted_image": "b"}).encode()
    rows["JSON key with a forged log line"] = await attack.post(
        IMAGE_VERIFICATION.path, forged, "application/json")
    return {name: {"http": status, "code": body.get("code")} for name, (status, body) in
            rows.items()}


async def costly_inputs(attack: Attack) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (8192, 4880), (128, 128, 128)).save(buffer, "PNG")
    png = RING.encrypt(buffer.getvalue())
    body = urlencode({"encrypted_image": png}).encode()
    pid = attack.server.process.pid
    before, peak = rss_mb(pid), 0.0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    answers = await asyncio.gather(*(attack.post(FACE_QUALITY.path, body,
                                                 "application/x-www-form-urlencoded")
                                     for _ in range(8)))
    png_s = time.monotonic() - started
    await asyncio.sleep(2)
    watcher.cancel()
    after = rss_mb(pid)
    video = _blank_4k60()
    started = time.monotonic()
    status, answer = await attack.post(
        SILENT_DETECTION.path, urlencode({"encrypted_video": RING.encrypt(video)}).encode(),
        "application/x-www-form-urlencoded")
    return {
        "png_bytes": len(buffer.getvalue()), "png_codes": [a[1].get("code") for a in answers],
        "png_seconds": round(png_s, 1), "rss_before_mb": round(before), "rss_peak_mb":
        round(peak), "rss_after_mb": round(after), "video_bytes": len(video),
        "video_code": answer.get("code"), "video_seconds": round(time.monotonic() - started, 1),
    }


def _blank_4k60(seconds: float = 10.0) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=60)
        stream.width, stream.height, stream.pix_fmt = 3840, 2160, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "40"}
        frame = av.VideoFrame.from_ndarray(np.zeros((2160, 3840, 3), np.uint8), format="bgr24")
        for index in range(int(seconds * 60)):
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


async def hygiene(attack: Attack) -> dict:
    async with attack.session.get(attack.server.url + "/healthz") as response:
        headers = response.headers
    return {"server_header": headers.get("Server"), "cache_control": headers.get("Cache-Control")}


async def _main(args: argparse.Namespace) -> dict:
    logs = Path(tempfile.mkdtemp(prefix="facegate-attacks-"))
    server = start_facegate("attacked", logs, {"FACEGATE_LOG_LEVEL": "INFO",
                                               "FACEGATE_MAX_IN_FLIGHT": "64",
                                               "FACEGATE_MAX_COST_IN_FLIGHT": "64"})
    results: dict = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            attack = Attack(server, session)
            assert await attack.verify() == 1000
            await asyncio.sleep(1)
            results["rss_start_mb"] = round(rss_mb(server.process.pid))
            results["slow_clients"] = await slow_clients(attack, args.slow_seconds)
            results["bad_bodies"] = await bad_bodies(attack)
            results["costly_inputs"] = await costly_inputs(attack)
            results["killed_triton"] = await killed_triton(attack)
            results["hygiene"] = await hygiene(attack)
            results["still_serving"] = await attack.verify()
            await asyncio.sleep(2)
            results["rss_end_mb"] = round(rss_mb(server.process.pid))
    finally:
        server.stop()
    text = server.log.read_text(errors="replace") if server.log else ""
    results["log"] = {
        "forged_lines": sum(line.startswith(FORGED[:10]) and "FORGED-LINE" in line
                            for line in text.splitlines()),
        "error_lines_on_triton_death": [line[:160] for line in text.splitlines()
                                        if " ERROR deploy.embedded_triton" in line],
    }
    results["machine"] = {"node": platform.node(), "cpus": os.cpu_count()}
    results["command"] = f"python -m benchmarks.attacks --slow-seconds {args.slow_seconds:g}"
    return results


def _markdown(r: dict) -> str:
    slow, bad, cost, kill = r["slow_clients"], r["bad_bodies"], r["costly_inputs"], r[
        "killed_triton"]
    lines = [
        "# The security review's attacks, re-run", "",
        f"Command: `.venv/bin/{r['command']}`; {r['machine']['cpus']} cores; "
        "`python -m frontend` with its embedded Triton, API keys off.", "",
        "| what was done | what happened |", "|---|---|",
        f"| 64 connections each sending a form body a byte every 2 s, 200 half-sent headers, "
        f"for {slow['seconds']:g} s, while one client verifies | that client's answers: "
        f"{slow['served_client_codes']}; slow bodies cut off: {slow['slow_bodies_cut_off']}"
        f"/64; half-sent headers closed: {slow['half_headers_closed']}/200 |",
        f"| `kill -9` of tritonserver while a client verifies | real verification served again "
        f"after {kill['recovered_s']} s; client saw {kill['client_codes']}; /healthz "
        f"{kill['healthz_during']}; {kill['stub_processes_before']} stub processes, "
        f"{kill['left_in_old_group']} left afterwards; {kill['tritonservers_now']} tritonserver "
        f"running; ERROR lines: {len(r['log']['error_lines_on_triton_death'])} |",
    ]
    for name, answer in bad.items():
        lines.append(f"| {name} | HTTP {answer['http']}, code {answer['code']} |")
    lines += [
        f"| JSON key and value with a newline and a fake log line | forged lines in the log: "
        f"{r['log']['forged_lines']} |",
        f"| a {cost['png_bytes'] // 1024} KB PNG declaring 8192x4880, eight at once | codes "
        f"{cost['png_codes']} in {cost['png_seconds']} s; frontend RSS {cost['rss_before_mb']} MB "
        f"-> peak {cost['rss_peak_mb']} MB -> {cost['rss_after_mb']} MB 2 s after |",
        f"| a {cost['video_bytes'] // 1024} KB blank 4K 60 fps 10 s video | code "
        f"{cost['video_code']} in {cost['video_seconds']} s |",
        f"| the whole attack run | frontend RSS {r['rss_start_mb']} MB -> {r['rss_end_mb']} MB; "
        f"a verification afterwards: {r['still_serving']} |",
        f"| headers | Server: {r['hygiene']['server_header']}; Cache-Control: "
        f"{r['hygiene']['cache_control']} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow-seconds", type=float, default=45.0)
    args = parser.parse_args()
    results = asyncio.run(_main(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "attacks.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "attacks.md").write_text(_markdown(results))
    print(_markdown(results))


if __name__ == "__main__":
    main()
