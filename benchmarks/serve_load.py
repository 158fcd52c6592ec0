"""Load on the REST API: N concurrent clients for T seconds on /v1/identify and /v1/analyze (loopback only).

Starts ``facelab serve`` on 127.0.0.1 (a fresh data folder, an admin key, two people
enrolled from samples/), warms it up, then for each endpoint runs ``--clients`` threads
that post the same photo in a loop for ``--seconds``, and reports requests/s, latency
percentiles, errors (anything but 200; must be 0) and the server's resident memory after
the run minus before it (a leak shows as growth that does not level off).

Writes rows ``endpoint, clients, rps, p50_ms, p95_ms, p99_ms, errors, rss_growth_mb`` to
``--json-out`` (default benchmarks/results/serve_load.json).

Usage: python benchmarks/serve_load.py [--clients 1,4] [--seconds 20] [--image samples/photos/obama_and_biden.jpg]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402

from facelab.serve.keys import KeyStore  # noqa: E402

ENDPOINTS = {"identify": "/v1/identify", "analyze": "/v1/analyze?actions=all"}


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, port: int, threads: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "facelab.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(url + "/v1/ready", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not become ready in 300 s")


def load(url: str, path: str, key: str, image: bytes, clients: int, seconds: float) -> dict:
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            while time.monotonic() < stop:
                t = time.perf_counter()
                try:
                    ok = c.post(path, files={"image": ("photo.jpg", image, "image/jpeg")}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    errors[0] += not ok

    t0 = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {
        "rps": round(len(lat) / wall, 2),
        "requests": len(lat),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "errors": errors[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,4", help="comma-separated numbers of concurrent clients")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each run")
    ap.add_argument("--threads", type=int, default=2, help="server --threads (requests computed at once)")
    ap.add_argument("--image", default=str(ROOT / "samples" / "photos" / "obama_and_biden.jpg"))
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "serve_load.json"))
    args = ap.parse_args()

    image = Path(args.image).read_bytes()
    data = Path(tempfile.mkdtemp(prefix="facelab-load-"))
    key = KeyStore(data / "keys.json").create("admin", "load")[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(data, port, args.threads)
    rows = []
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            for name, photo in (("Barack Obama", "known/obama.jpg"), ("Joe Biden", "known/biden.jpg")):
                r = c.post(
                    "/v1/gallery/people",
                    data={"name": name},
                    files={"image": ("p.jpg", (ROOT / "samples" / photo).read_bytes(), "image/jpeg")},
                )
                r.raise_for_status()
            for path in ENDPOINTS.values():  # warm-up: first-call allocations are not a leak
                for _ in range(3):
                    c.post(path, files={"image": ("photo.jpg", image, "image/jpeg")}).raise_for_status()
        for n in [int(x) for x in args.clients.split(",")]:
            for endpoint, path in ENDPOINTS.items():
                before = rss_mb(proc.pid)
                res = load(url, path, key, image, n, args.seconds)
                after = rss_mb(proc.pid)
                row = {
                    "endpoint": endpoint,
                    "clients": n,
                    **res,
                    "rss_before_mb": round(before, 1),
                    "rss_growth_mb": round(after - before, 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    print()
    print(f"{'endpoint':9s} {'clients':>7s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>6s} {'RSS +MB':>8s}")
    for r in rows:
        print(
            f"{r['endpoint']:9s} {r['clients']:7d} {r['rps']:7.2f} {r['p50_ms']:8.0f} {r['p95_ms']:8.0f} {r['p99_ms']:8.0f} {r['errors']:6d} {r['rss_growth_mb']:8.1f}"
        )
    out = {
        "benchmark": "serve_load",
        "image": os.path.relpath(args.image, ROOT),
        "seconds": args.seconds,
        "server_threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_at_end": os.getloadavg()},
        "rows": rows,
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten {args.json_out}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
