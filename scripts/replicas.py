#!/usr/bin/env python
"""Several service replicas on one PostgreSQL store, measured (loopback only).

    python scripts/replicas.py --replicas 1 --out runs/replicas1.json
    python scripts/replicas.py --replicas 2 --out runs/replicas2.json
    python scripts/replicas.py --replicas 2 --kill-after 20 --out runs/replicas2_kill.json

Starts its own PostgreSQL server (initdb in a temporary folder, like the test suite) unless
``--db postgresql://...`` is given, then ``--replicas`` ``maskface serve`` processes on it. The
kiosks (``--concurrency``) are spread over the replicas as a round-robin load balancer would,
and fail over to another replica when theirs does not answer. The policy is set with liveness
and masks off: the built-in photo is a photograph, which liveness rightly denies as a spoof.

It measures throughput and errors; the cross-replica enrolment latency (an enrolment on
replica 0 until replica 1 identifies that person; ``--probes`` times, with LFW photos from
``MASKFACE_DATA``); and with ``--kill-after S`` it ``kill -9``s the last replica S seconds into
the load while an enroller keeps enrolling through it, then counts rows: every acknowledged
(answered 200/201) event and enrolment must be in the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from maskface.service import launch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # pg_util


def _serve(db: str, tmp: Path, i: int, workers: int) -> tuple[subprocess.Popen, str]:
    port = launch.free_port()
    config = tmp / "replica.toml"
    config.write_text(f"[models]\nworkers = {workers}\n")
    proc = launch.spawn(db, tmp / f"replica{i}.log", port, config,
                        threads=os.environ.get("MASKFACE_THREADS", "1"))
    return proc, f"http://127.0.0.1:{port}"


def _lfw_photos(n: int) -> list[bytes]:
    root = Path(os.environ.get("MASKFACE_DATA", Path(__file__).resolve().parents[2] / "shared"
                               / "data")) / "lfw" / "images"
    out = []
    for person in sorted(root.iterdir()) if root.is_dir() else []:
        photos = sorted(person.glob("*.jpg"))
        if photos:  # the centre: the person; bystanders sit at the edges of LFW photos
            import cv2

            img = cv2.imread(str(photos[0]))[45:205, 45:205]
            out.append(cv2.imencode(".jpg", img)[1].tobytes())
        if len(out) == n:
            break
    return out


async def _load(urls: list[str], alive: list[bool], key: str, admin: str, photo: bytes,
                concurrency: int, duration: float, kill_at: float | None, kill) -> dict:
    lat: list[float] = []
    statuses: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    errors: list[str] = []
    acked_events: list[int] = []
    acked_people: list[int] = []
    failovers = 0
    t0 = time.perf_counter()
    stop = t0 + duration
    limits = httpx.Limits(max_connections=concurrency + 8)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300.0)) as client:

        async def kiosk(i: int) -> None:
            nonlocal failovers
            r_i = i % len(urls)
            while time.perf_counter() < stop:
                if not alive[r_i]:  # the balancer stops sending to a dead replica
                    r_i = next(j for j in range(len(urls)) if alive[j])
                t = time.perf_counter()
                try:
                    r = await client.post(f"{urls[r_i]}/v1/access/check",
                                          headers={"X-API-Key": key},
                                          data={"temperature": "36.6"},
                                          files={"image": ("k.jpg", photo, "image/jpeg")})
                except httpx.HTTPError as exc:
                    if not alive[r_i]:  # in flight when its replica was killed: unacknowledged
                        failovers += 1
                        continue
                    statuses["exception"] += 1
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                statuses[str(r.status_code)] += 1
                if r.status_code == 200:
                    lat.append(time.perf_counter() - t)
                    decisions[r.json()["decision"]] += 1
                    acked_events.append(int(r.json()["event_id"]))
                else:
                    errors.append(f"{r.status_code}: {r.text[:200]}")

        async def enroller() -> None:
            # Enrolments through the replica that will be killed, acknowledged or not.
            n = 0
            while time.perf_counter() < stop and kill_at is not None:
                target = len(urls) - 1 if alive[-1] else 0
                n += 1
                try:
                    r = await client.post(f"{urls[target]}/v1/people",
                                          headers={"X-API-Key": admin},
                                          data={"name": f"enrolled {n}", "allow_duplicate": "true"},
                                          files=[("photos", ("p.jpg", photo, "image/jpeg"))])
                    if r.status_code == 201:
                        acked_people.append(int(r.json()["id"]))
                    else:
                        errors.append(f"enrol {r.status_code}: {r.text[:200]}")
                except httpx.HTTPError:
                    pass  # killed mid-request: not acknowledged
                await asyncio.sleep(0.5)

        async def killer() -> None:
            if kill_at is None:
                return
            await asyncio.sleep(kill_at)
            alive[-1] = False
            kill()

        await asyncio.gather(killer(), enroller(), *(kiosk(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - t0
    a = np.array(lat) * 1e3 if lat else np.zeros(1)
    return {"replicas": len(urls), "concurrency": concurrency, "duration_s": duration,
            "elapsed_s": round(elapsed, 2), "ok": len(lat), "errors": len(errors),
            "error_samples": errors[:10], "statuses": dict(statuses),
            "decisions": dict(decisions), "throughput_rps": round(len(lat) / elapsed, 2),
            "latency_ms": {"p50": round(float(np.percentile(a, 50)), 1),
                           "p95": round(float(np.percentile(a, 95)), 1)},
            "unacknowledged_in_flight_at_kill": failovers,
            "_acked_events": acked_events, "_acked_people": acked_people}


def _cross_replica(urls: list[str], admin: str, photos: list[bytes]) -> dict:
    """Enrol on replica 0, then ask replica 1 until it names that person."""
    out = []
    with httpx.Client(timeout=60) as c:
        for i, p in enumerate(photos):
            name = f"cross {i}"
            r = c.post(f"{urls[0]}/v1/people", headers={"X-API-Key": admin},
                       data={"name": name, "allow_duplicate": "true"},
                       files=[("photos", ("p.jpg", p, "image/jpeg"))])
            if r.status_code != 201:
                continue
            t_ack = time.perf_counter()
            while True:
                q = c.post(f"{urls[1]}/v1/identify", headers={"X-API-Key": admin},
                           files={"image": ("q.jpg", p, "image/jpeg")})
                faces = q.json().get("faces", []) if q.status_code == 200 else []
                names = [(f.get("identity") or {}).get("name") for f in faces]
                if name in names:
                    out.append(time.perf_counter() - t_ack)
                    break
                if time.perf_counter() - t_ack > 10:
                    out.append(float("inf"))
                    break
    a = np.array(out) * 1e3
    return {"probes": len(out),
            "ms": {"max": round(float(a.max()), 1) if len(a) else None,
                   "p50": round(float(np.median(a)), 1) if len(a) else None},
            "within_1s": int((a <= 1000).sum()),
            "note": "from replica 0's 201 to replica 1's first /v1/identify naming the person; "
                    "includes that identify request's own inference"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="postgresql:// URL (default: start a throw-away server)")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="[models] workers per replica")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--kill-after", type=float, default=None)
    ap.add_argument("--probes", type=int, default=5, help="cross-replica enrolment probes")
    ap.add_argument("--out", type=Path, default=Path("runs/replicas.json"))
    args = ap.parse_args()

    from maskface.cli.detect import demo_image
    from maskface.service.auth import KeyStore
    from maskface.storage import open_database

    photo = demo_image().read_bytes()
    server = None
    if args.db is None:
        from pg_util import PostgresServer

        server = PostgresServer()
        args.db = server.new_database()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="maskface-replicas-") as tmp:
        try:
            with open_database(args.db) as db:
                keys = KeyStore(db)
                admin, _ = keys.create("admin", "replicas")
                kiosk, _ = keys.create("kiosk", "replicas")
            urls = []
            for i in range(args.replicas):
                p, u = _serve(args.db, Path(tmp), i, args.workers)
                procs.append(p)
                urls.append(u)
            for p, u in zip(procs, urls):
                try:
                    launch.wait_healthy(p, u, timeout=240)
                except RuntimeError as e:
                    sys.exit(f"error: {e}")
            h = {"X-API-Key": admin}
            httpx.put(f"{urls[0]}/v1/policy", headers=h, timeout=30, json={
                "mask_required": False, "liveness_required": False}).raise_for_status()
            httpx.post(f"{urls[0]}/v1/people", headers=h, timeout=120,
                       data={"name": "Load Test"},
                       files=[("photos", ("p.jpg", photo, "image/jpeg"))]).raise_for_status()
            cross = None
            if args.replicas >= 2 and args.probes:
                cross = _cross_replica(urls, admin, _lfw_photos(args.probes))
            alive = [True] * len(urls)
            load_before = os.getloadavg()
            print(f"{args.replicas} replica(s), {args.concurrency} kiosks, {args.duration:.0f} s",
                  file=sys.stderr)
            report = asyncio.run(_load(urls, alive, kiosk, admin, photo, args.concurrency,
                                       args.duration, args.kill_after,
                                       lambda: procs[-1].send_signal(signal.SIGKILL)))
            events, people = report.pop("_acked_events"), report.pop("_acked_people")
            with open_database(args.db) as db, db.transaction(write=False) as tx:
                stored_ev = {r[0] for r in tx.execute("SELECT id FROM events")}
                stored_people = {r[0] for r in tx.execute("SELECT id FROM people")}
            report["acknowledged"] = {
                "events": len(events), "events_missing": len(set(events) - stored_ev),
                "events_in_store": len(stored_ev),
                "enrolments": len(people), "enrolments_missing": len(set(people) - stored_people)}
            report.update(cross_replica_enrolment=cross, load_average_before=load_before,
                          load_average_after=os.getloadavg(), cpus=os.cpu_count(),
                          killed_after_s=args.kill_after, store="postgresql")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        p.kill()
            if server is not None:
                server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
