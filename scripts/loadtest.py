#!/usr/bin/env python
"""Load test of the access-control service: N concurrent kiosks posting access checks for T
seconds, on the loopback interface only. Prints and writes (JSON) errors, latency percentiles and
throughput.

    python scripts/loadtest.py                      # starts its own server on 127.0.0.1
    python scripts/loadtest.py --url http://127.0.0.1:8000 --key mf_...   # an existing one

Without ``--url`` it starts ``maskface serve`` on a free loopback port with a temporary
database, enrols the photo's person (so checks go through identification) and stops the server
afterwards. The load is bounded by ``--concurrency`` and ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

from maskface.service import launch


def _loopback_only(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        sys.exit(f"error: refusing to load-test {host!r}: loopback addresses only")


def _start_server(tmp: Path, photo: bytes, workers: int = 1
                  ) -> tuple[subprocess.Popen, str, str]:
    from maskface.gallery import Gallery
    from maskface.service.auth import KeyStore

    db = tmp / "loadtest.db"
    Gallery(db).close()
    admin, _ = KeyStore(db).create("admin", "loadtest")
    kiosk, _ = KeyStore(db).create("kiosk", "loadtest")
    config = tmp / "loadtest.toml"
    config.write_text(f"[models]\nworkers = {workers}\n")
    try:
        proc, url = launch.start(db, tmp / "server.log", config)
    except RuntimeError as e:
        sys.exit(f"error: {e}; see {tmp / 'server.log'}")
    r = httpx.post(f"{url}/v1/people", headers={"X-API-Key": admin}, data={"name": "Load Test"},
                   files=[("photos", ("p.jpg", photo, "image/jpeg"))], timeout=60)
    r.raise_for_status()
    return proc, url, kiosk


async def _run(url: str, key: str, photo: bytes, concurrency: int, duration: float,
               temperature: float, burst: int = 1) -> dict:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    errors: list[str] = []
    health_lat: list[float] = []
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, limits=limits,
                                 timeout=httpx.Timeout(300.0)) as client:

        form = {"temperature": str(temperature)}

        async def kiosk() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    files = ({"image": ("k.jpg", photo, "image/jpeg")} if burst == 1 else
                             [("images", (f"k{i}.jpg", photo, "image/jpeg"))
                              for i in range(burst)])
                    r = await client.post("/v1/access/check", data=form, files=files)
                    statuses[str(r.status_code)] += 1
                    if r.status_code == 200:
                        decisions[r.json()["decision"]] += 1
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    statuses["exception"] += 1
                    errors.append(f"{type(exc).__name__}: {exc}")

        async def prober() -> None:
            # Health must stay fast under load: inference runs off the event loop.
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.get("/v1/health")
                if r.status_code == 200:
                    health_lat.append(time.perf_counter() - t0)
                await asyncio.sleep(1.0)

        t_start = time.perf_counter()
        await asyncio.gather(prober(), *(kiosk() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t_start

    lat = np.array(latencies) * 1e3 if latencies else np.zeros(1)
    hl = np.array(health_lat) * 1e3 if health_lat else np.zeros(1)
    n_req = sum(v for k, v in statuses.items())
    return {
        "concurrency": concurrency, "duration_s": duration, "elapsed_s": round(elapsed, 2),
        "requests": n_req, "ok": len(latencies), "errors": len(errors),
        "error_samples": errors[:10], "statuses": dict(statuses), "decisions": dict(decisions),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                       "p95": round(float(np.percentile(lat, 95)), 1),
                       "p99": round(float(np.percentile(lat, 99)), 1),
                       "mean": round(float(lat.mean()), 1), "max": round(float(lat.max()), 1)},
        "health_latency_ms_under_load": {"p50": round(float(np.percentile(hl, 50)), 1),
                                         "max": round(float(hl.max()), 1),
                                         "samples": len(health_lat)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an already running service (loopback only)")
    ap.add_argument("--key", help="API key for --url (kiosk or admin)")
    ap.add_argument("--image", type=Path, help="photo to send (default: the built-in example)")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds")
    ap.add_argument("--temperature", type=float, default=36.6)
    ap.add_argument("--out", type=Path, default=Path("runs/loadtest.json"))
    ap.add_argument("--burst", type=int, default=1,
                    help="frames per access check (a kiosk burst; 1 = a single photo)")
    ap.add_argument("--workers", type=int, default=1,
                    help="the started server's [models] workers (not with --url)")
    args = ap.parse_args()
    if not 1 <= args.concurrency <= 500 or not 1 <= args.duration <= 3600:
        sys.exit("error: --concurrency must be 1-500 and --duration 1-3600 s")

    if args.image is None:
        from maskface.cli.detect import demo_image

        args.image = demo_image()
    photo = args.image.read_bytes()
    proc = None
    with tempfile.TemporaryDirectory(prefix="maskface-loadtest-") as tmp:
        if args.url:
            _loopback_only(args.url)
            if not args.key:
                sys.exit("error: --url needs --key")
            url, key = args.url.rstrip("/"), args.key
        else:
            proc, url, key = _start_server(Path(tmp), photo, args.workers)
        load_before = os.getloadavg()
        try:
            health = httpx.get(f"{url}/v1/health", timeout=10).json()
            print(f"load test: {args.concurrency} concurrent access checks for "
                  f"{args.duration:.0f} s against {url}", file=sys.stderr)
            report = asyncio.run(_run(url, key, photo, args.concurrency, args.duration,
                                      args.temperature, args.burst))
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    report.update(image=str(args.image), models=health.get("models"), burst=args.burst,
                  machine={"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
                  # other work on the machine shares the cores: say how busy it was
                  load_average_before=load_before, load_average_after=os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    lat = report["latency_ms"]
    print(f"requests {report['requests']}, ok {report['ok']}, errors {report['errors']}; "
          f"throughput {report['throughput_rps']} checks/s; latency p50 {lat['p50']} ms, "
          f"p95 {lat['p95']} ms, p99 {lat['p99']} ms; health under load p50 "
          f"{report['health_latency_ms_under_load']['p50']} ms; report: {args.out}")
    if report["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
