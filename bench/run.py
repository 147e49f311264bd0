"""Benchmarks: the sidecar against a bare aiohttp proxy and nginx, all on loopback.

    /tmp/venv/bin/python bench/run.py [--quick] [--scenario NAME ...] [--profile]

Scenarios: small_get, jql, transfer, sse, storm, workers (all by default). Each target gets
the same load, interleaved round by round (bare, nginx, sidecar, bare, …). The proxy under test
is pinned to CPU 0, everything else (load generator, upstream, redis, emulator) to CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import (
    BENCH,
    CLOUD_ID,
    DRIVER_CPU,
    SERVER_CPU,
    Stack,
    Target,
    free_port,
    login,
    proc_status,
    reset_peak,
    wait_port,
)

SCENARIOS = ("small_get", "jql", "transfer", "sse", "storm", "workers", "variants")
SMALL = f"/jira/{CLOUD_ID}/rest/api/3/myself"
JQL = f"/jira/{CLOUD_ID}/rest/api/3/search/jql?jql=project%3DACME&maxResults=480"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: int
    sse_streams: int
    sse_window: float
    storm: int
    transfer_mib: int = 100


FULL = Plan(rounds=3, seconds=4, sse_streams=1000, sse_window=6.0, storm=1000)
QUICK = Plan(rounds=1, seconds=3, sse_streams=1000, sse_window=4.0, storm=1000)


def out(line: str = "") -> None:
    print(line, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def verdict(ok: bool) -> str:
    return "MET " if ok else "MISSED"


# --- wrk ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    mib_s: float


def wrk(
    target: Target,
    path: str,
    *,
    seconds: int,
    connections: int,
    delay_ms: int = 0,
    cpus: str = DRIVER_CPU,
) -> WrkResult:
    env = {**os.environ, "BENCH_COOKIE": target.cookie, "BENCH_DELAY_MS": str(delay_ms)}
    argv = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    argv += ["-s", str(BENCH / "wrk.lua"), target.url + path]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=seconds + 30, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {done.stdout} {done.stderr}")
    data = json.loads(line.removeprefix("BENCH "))
    secs = data["duration_us"] / 1e6
    return WrkResult(
        rps=data["requests"] / secs,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
        mib_s=data["bytes"] / secs / MIB,
    )


def interleaved(
    targets: Sequence[Target], rounds: int, run: Callable[[Target], WrkResult]
) -> dict[str, WrkResult]:
    """Run A B C A B C …; per target the round with the median throughput."""
    results: dict[str, list[WrkResult]] = {t.name: [] for t in targets}
    for _ in range(rounds):
        for target in targets:
            results[target.name].append(run(target))
    return {
        name: sorted(runs, key=lambda r: r.rps)[len(runs) // 2] for name, runs in results.items()
    }


def table(results: dict[str, WrkResult], *, throughput: bool = False) -> None:
    extra = "     MiB/s" if throughput else ""
    out(f"  {'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{extra}")
    for name, r in results.items():
        tail = f"{r.mib_s:>10.1f}" if throughput else ""
        out(f"  {name:<10}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}{tail}")


# --- scenarios ----------------------------------------------------------------------------
def small_get(targets: list[Target], plan: Plan, summary: dict[str, object]) -> None:
    out(f"== small_get: GET {SMALL} (~600 B JSON), wrk -t1 -c32, {plan.seconds}s x {plan.rounds}")
    peak = interleaved(
        targets,
        plan.rounds,
        lambda t: wrk(t, SMALL, seconds=plan.seconds, connections=32),
    )
    table(peak)
    side, bare, nginx = peak["sidecar"], peak["bare"], peak["nginx"]
    r_bare, r_nginx = side.rps / bare.rps, side.rps / nginx.rps
    out(f"  ratio sidecar/bare  throughput {r_bare:.2f}x   [{verdict(r_bare >= 1.0)} >= 1.0x]")
    out(f"  ratio sidecar/nginx throughput {r_nginx:.2f}x   [{verdict(r_nginx >= 0.4)} >= 0.4x]")
    # Paced: each target at half the bare proxy's peak rate, wrk's delay() per connection.
    rate = bare.rps / 2
    conns = max(4, round(rate * 0.005))
    delay = max(1, round(conns * 1000 / rate))
    out(f"  paced at ~{rate:.0f} req/s (half the bare proxy's peak): -c{conns}, {delay} ms pause")
    paced = interleaved(
        targets,
        plan.rounds,
        lambda t: wrk(t, SMALL, seconds=plan.seconds, connections=conns, delay_ms=delay),
    )
    table(paced)
    added = paced["sidecar"].p99_ms - paced["bare"].p99_ms
    out(f"  p99 added over bare at that rate {added:+.2f} ms   [{verdict(added <= 1.0)} <= 1 ms]")
    summary["small_get"] = {"peak": peak, "paced": paced}


def jql(targets: list[Target], plan: Plan, summary: dict[str, object]) -> None:
    out(f"== jql: GET search/jql (~200 KiB JSON), wrk -t1 -c16, {plan.seconds}s x {plan.rounds}")
    res = interleaved(
        targets, plan.rounds, lambda t: wrk(t, JQL, seconds=plan.seconds, connections=16)
    )
    table(res, throughput=True)
    out(f"  ratio sidecar/bare  throughput {res['sidecar'].rps / res['bare'].rps:.2f}x")
    out(f"  ratio sidecar/nginx throughput {res['sidecar'].rps / res['nginx'].rps:.2f}x")
    summary["jql"] = res


def _curl(target: Target, direction: str, upload_file: Path) -> tuple[float, int, int]:
    """One transfer: MiB/s, HTTP status, peak RSS growth (KiB) of the target process."""
    before = proc_status(target.pid)["VmRSS"]
    reset_peak(target.pid)
    argv = ["taskset", "-c", DRIVER_CPU, "curl", "-s", "-o", "/dev/null", "-H", "Expect:"]
    if target.cookie:
        argv += ["-H", f"Cookie: {target.cookie}"]
    if direction == "download":
        argv += ["-w", "%{speed_download} %{http_code}", f"{target.url}/jira/{CLOUD_ID}/download"]
    else:
        argv += ["-T", str(upload_file), "-w", "%{speed_upload} %{http_code}"]
        argv += [f"{target.url}/jira/{CLOUD_ID}/upload"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
    speed, status = done.stdout.split()
    growth = proc_status(target.pid)["VmHWM"] - before
    return float(speed) / MIB, int(status), growth


def transfer(targets: list[Target], plan: Plan, summary: dict[str, object], tmp: Path) -> None:
    size = plan.transfer_mib
    out(f"== transfer: {size} MiB download and upload (curl), x {plan.rounds + 1}, interleaved")
    upload_file = tmp / "upload.bin"
    with upload_file.open("wb") as fh:
        for _ in range(size):
            fh.write(os.urandom(MIB))
    res: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    for _ in range(plan.rounds + 1):
        for direction in ("download", "upload"):
            for target in targets:
                res.setdefault((target.name, direction), []).append(
                    _curl(target, direction, upload_file)
                )
    out(f"  {'target':<10}{'direction':<10}{'MiB/s':>10}{'peak RSS growth MiB':>22}{'status':>8}")
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for (name, direction), runs in res.items():
        speed = statistics.median(r[0] for r in runs)
        growth = max(r[2] for r in runs) / 1024
        statuses = ",".join(sorted({str(r[1]) for r in runs}))
        best[(name, direction)] = (speed, growth)
        out(f"  {name:<10}{direction:<10}{speed:>10.0f}{growth:>22.1f}{statuses:>8}")
    for direction in ("download", "upload"):
        speed, growth = best[("sidecar", direction)]
        ratio = speed / best[("nginx", direction)][0]
        out(
            f"  sidecar {direction}: {ratio:.2f}x nginx [{verdict(ratio >= 0.5)} >= 0.5x], "
            f"{speed / best[('bare', direction)][0]:.2f}x bare; peak RSS growth {growth:.1f} MiB "
            f"[{verdict(growth <= 32)} <= 32 MiB]"
        )
    summary["transfer"] = {f"{k[0]}/{k[1]}": v for k, v in best.items()}


async def _sse(target: Target, streams: int, window: float) -> tuple[float, list[float], int]:
    """Open ``streams`` SSE streams; RSS growth per stream (KiB) and relay latencies (ms)."""
    url = f"{target.url}/jira/{CLOUD_ID}/stream"
    opened = 0
    failed = 0
    recording = False
    samples: list[float] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)

    async def one(http: aiohttp.ClientSession) -> None:
        nonlocal opened, failed
        try:
            async with http.get(url, headers=target.headers()) as resp:
                if resp.status != 200:
                    failed += 1
                    return
                first = True
                async for line in resp.content:
                    if not line.startswith(b"data: "):
                        continue
                    if first:
                        opened += 1
                        first = False
                    elif recording:
                        samples.append((time.time_ns() - int(line[6:])) / 1e6)
        except aiohttp.ClientError:
            failed += 1

    before = proc_status(target.pid)["VmRSS"]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        tasks: list[asyncio.Task[None]] = []
        for batch in range(0, streams, 100):
            tasks += [asyncio.create_task(one(http)) for _ in range(min(100, streams - batch))]
            for _ in range(200):  # up to 10 s per batch
                if opened + failed >= len(tasks):
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        growth = (proc_status(target.pid)["VmRSS"] - before) / max(1, opened)
        recording = True
        await asyncio.sleep(window)
        recording = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return growth, samples, opened


def sse(targets: list[Target], plan: Plan, summary: dict[str, object], upstream: str) -> None:
    n = plan.sse_streams
    out(
        f"== sse: {n} concurrent idle text/event-stream streams, one event per stream every ~2 s, "
        f"relay latency over {plan.sse_window:.0f} s"
    )
    direct = Target("upstream", upstream.rstrip("/") + "/ex", pid=0)
    out(f"  {'target':<10}{'open':>6}{'KiB/stream':>12}{'events':>8}{'p50 ms':>9}{'p99 ms':>9}")
    res: dict[str, tuple[float, float, float]] = {}
    direct = Target("upstream", direct.url, pid=os.getpid())  # the floor; no proxy memory
    for target in [direct, *targets]:
        growth, samples, opened = asyncio.run(_sse(target, n, plan.sse_window))
        p50, p99 = pct(samples, 50), pct(samples, 99)
        shown = "-" if target.name == "upstream" else f"{growth:.1f}"
        out(f"  {target.name:<10}{opened:>6}{shown:>12}{len(samples):>8}{p50:>9.2f}{p99:>9.2f}")
        res[target.name] = (growth, p50, p99)
        time.sleep(1.0)  # let the closed streams drain before the next target
    growth, _, p99 = res["sidecar"]
    added = p99 - res["upstream"][2]
    out(
        f"  sidecar {growth:.1f} KiB/stream [{verdict(growth <= 64)} <= 64 KiB]; relay p99 "
        f"{p99:.2f} ms ({added:+.2f} over direct) [{verdict(p99 <= 5)} <= 5 ms]"
    )
    summary["sse"] = res


async def _probe_token(emulator: str, count: int = 5) -> float:
    """Median latency of the token endpoint (a refused refresh through the same delay)."""
    times: list[float] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            started = time.perf_counter()
            async with http.post(
                f"{emulator}/oauth/token",
                json={
                    "grant_type": "refresh_token",
                    "refresh_token": "bench-probe",
                    "client_id": "x",
                    "client_secret": "y",
                },
            ) as resp:
                await resp.read()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _metric_sum(urls: Sequence[str], name: str) -> dict[str, float]:
    """Sum a metric's samples over the replicas' /metrics, per label set."""
    found: Counter[str] = Counter()
    async with aiohttp.ClientSession() as http:
        for url in urls:
            async with http.get(url) as resp:
                for line in (await resp.text()).splitlines():
                    if line.startswith(name):
                        key, _, value = line.rpartition(" ")
                        found[key.removeprefix(name)] += int(float(value))
    return dict(found)


async def _stats(emulator: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{emulator}/_bench/stats") as r:
        count: int = (await r.json())["refresh_calls"]
        return count


def storm(stack: Stack, plan: Plan, summary: dict[str, object], upstream: str, redis: str) -> None:
    n, delay = plan.storm, 0.1
    out(
        f"== storm: {n} concurrent requests on an expired token over 3 sidecar replicas sharing "
        f"Redis (emulator --access-token-ttl 70, token endpoint delay {delay * 1000:.0f} ms; "
        "replicas not pinned)"
    )
    emulator = stack.emulator(access_token_ttl=70, token_delay=delay)
    ports = [free_port() for _ in range(3)]
    procs = []
    metrics_urls = []
    for i, port in enumerate(ports):
        env = stack.sidecar_env(
            port=port, public_port=ports[0], api=upstream, auth=emulator, redis=redis
        )
        metrics_urls.append(f"http://{env['SIDECAR_METRICS_LISTEN']}/metrics")
        procs.append(stack.sidecar(f"storm-{i}", env, cpus="0,1", wait=False))
    for port in ports:
        wait_port(port)
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    token_ms = asyncio.run(_probe_token(emulator))

    async def drive() -> tuple[list[float], list[float], Counter[str], int, float]:
        cookie = await login(urls[0], emulator)
        logged_in = time.monotonic()
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=120)
        statuses: Counter[str] = Counter()

        async def one(http: aiohttp.ClientSession, i: int) -> float:
            started = time.perf_counter()
            headers = {"Cookie": cookie, "Accept": "application/json"}
            async with http.get(urls[i % 3] + SMALL, headers=headers) as r:
                await r.read()
                statuses[f"{r.status} {r.headers.get('X-Sidecar-Error', '')}".strip()] += 1
            return (time.perf_counter() - started) * 1000

        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.gather(*(one(http, i) for i in range(n)))  # warm pool and replicas
            statuses.clear()
            fresh = await asyncio.gather(*(one(http, i) for i in range(n)))
            fresh_statuses = dict(statuses)
            # The token (ttl 70 s) enters the 60 s refresh skew 10 s after the login.
            await asyncio.sleep(max(0.0, logged_in + 11.0 - time.monotonic()))
            calls_before = await _stats(emulator)
            statuses.clear()
            expired = await asyncio.gather(*(one(http, i) for i in range(n)))
            calls = await _stats(emulator) - calls_before
        out(f"  fresh-token burst statuses {fresh_statuses}")
        return list(fresh), list(expired), statuses, calls, logged_in

    fresh, expired, statuses, calls, _ = asyncio.run(drive())
    f99, e99 = pct(fresh, 99), pct(expired, 99)
    out(f"  token endpoint latency (median of 5 probes) {token_ms:.1f} ms")
    out(f"  fresh token:   p50 {pct(fresh, 50):7.1f} ms  p99 {f99:7.1f} ms")
    out(f"  expired token: p50 {pct(expired, 50):7.1f} ms  p99 {e99:7.1f} ms")
    out(f"  expired-token burst statuses {dict(statuses)}")
    out(f"  refresh calls at the token endpoint: {calls}   [{verdict(calls == 1)} exactly 1]")
    budget = token_ms + 50
    out(
        f"  p99 {e99:.1f} ms vs token latency + 50 ms = {budget:.1f} ms "
        f"[{verdict(e99 <= budget)}]"
        f"; the same burst on a fresh token has p99 {f99:.1f} ms, so the refresh adds "
        f"{e99 - f99:+.1f} ms"
    )
    errors = asyncio.run(_metric_sum(metrics_urls, "sidecar_session_store_errors_total"))
    out(f"  sidecar_session_store_errors_total over the replicas: {errors}")
    summary["storm"] = {"calls": calls, "p99": e99, "fresh_p99": f99, "token_ms": token_ms}
    for proc in procs:
        stack.stop(proc)


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (the supervisor and its workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(proc_status(p)["VmRSS"] for p in [pid, *map(int, children)]) / 1024


def workers(
    stack: Stack, plan: Plan, summary: dict[str, object], env: dict[str, str], cookie: str
) -> None:
    out(
        "== workers: small_get with SIDECAR_WORKERS=1 and =2 (workers share the port with "
        "SO_REUSEPORT under one supervisor); nothing pinned (2 cores for servers and wrk)"
    )
    port = free_port()
    res: dict[str, WrkResult] = {}
    rss: dict[str, float] = {}
    for count in (1, 2):
        name = f"{count} process" + ("es" if count > 1 else "")
        run_env = {
            **env,
            "SIDECAR_LISTEN": f"127.0.0.1:{port}",
            "SIDECAR_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
            "SIDECAR_WORKERS": str(count),
        }
        proc = stack.sidecar(f"workers-{count}", run_env, cpus="0,1")
        target = Target("sidecar", f"http://127.0.0.1:{port}", proc.pid, cookie)
        wrk(target, SMALL, seconds=1, connections=32, cpus="0,1")
        res[name] = wrk(target, SMALL, seconds=plan.seconds, connections=32, cpus="0,1")
        rss[name] = _tree_rss_mib(proc.pid)
        stack.stop(proc)
    table(res)
    gain = res["2 processes"].rps / res["1 process"].rps
    out(
        f"  2 processes / 1 process: {gain:.2f}x; RSS in all {rss['1 process']:.0f} MiB "
        f"/ {rss['2 processes']:.0f} MiB (supervisor and workers)"
    )
    summary["workers"] = {"gain": gain}


def variants(stack: Stack, plan: Plan, env: dict[str, str], emulator: str, default: Target) -> None:
    """The same sidecar with configuration-only changes, to price logging and Redis."""
    out("== variants: small_get peak (-c32) of the sidecar with configuration-only changes")
    targets = [Target("default", default.url, default.pid, default.cookie)]
    for name, change in (
        ("log=warning", {"SIDECAR_LOG_LEVEL": "warning"}),
        ("no redis", {"SIDECAR_REDIS_URL": ""}),
    ):
        port = free_port()
        proc = stack.sidecar(
            f"variant-{port}",
            {
                **env,
                **change,
                "SIDECAR_LISTEN": f"127.0.0.1:{port}",
                "SIDECAR_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
                "SIDECAR_PUBLIC_URL": f"http://127.0.0.1:{port}",
            },
        )
        cookie = asyncio.run(login(f"http://127.0.0.1:{port}", emulator))
        targets.append(Target(name, f"http://127.0.0.1:{port}", proc.pid, cookie))
    res = interleaved(
        targets, plan.rounds, lambda t: wrk(t, SMALL, seconds=plan.seconds, connections=32)
    )
    table(res)
    for name in ("log=warning", "no redis"):
        out(f"  {name}: {res[name].rps / res['default'].rps:.2f}x the default's throughput")


def profile(target: Target, seconds: int, tmp: Path) -> None:
    """py-spy on the sidecar under small_get load; shares of its busy samples."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = tmp / "profile.txt"
    out(
        f"== profile: py-spy record --nonblocking -r 200 on the sidecar, small_get -c32, {seconds}s"
    )
    spy_proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            DRIVER_CPU,
            spy,
            "record",
            "--nonblocking",
            "-r",
            "200",
            "-d",
            str(seconds + 1),
            "-f",
            "raw",
            "-o",
            str(raw),
            "-p",
            str(target.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = wrk(target, SMALL, seconds=seconds, connections=32)
    spy_proc.wait(timeout=seconds + 60)
    out(f"  (under the profiler: {result.rps:.0f} req/s)")
    report_profile(raw)
    out("  hot-path pieces timed alone (bench/micro.py, CPU 0):")
    micro = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, str(BENCH / "micro.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out(micro.stdout.rstrip())


BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("session lookup (aiohttp-session load_session)", ("load_session (sidecar/auth/sessions.py",)),
    ("  SessionRecord.from_dict / json", ("from_dict (sidecar/auth/model.py",)),
    ("token load (RefreshCoordinator.current)", ("current (sidecar/auth/refresh.py",)),
    ("unsealing: Sealer.open (HKDF + AES-GCM)", ("open (sidecar/auth/seal.py",)),
    ("  of which HKDF key derivation", ("_derive (sidecar/auth/seal.py",)),
    ("redis round trips (redis.asyncio)", ("redis/asyncio",)),
    ("header filtering (proxy/headers.py)", ("sidecar/proxy/headers.py",)),
    ("access log + other logging (structlog/logging)", ("structlog/", "logging/__init__.py")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("upstream request (Forwarder._send)", ("_send (sidecar/proxy/forward.py",)),
    ("response relay (Forwarder._relay)", ("_relay (sidecar/proxy/forward.py",)),
    ("aiohttp-session save/middleware", ("aiohttp_session/",)),
    ("site check (_resolve_site)", ("_resolve_site (sidecar/proxy/views.py",)),
    ("location rewriter regex compile", ("_location_rewriter (sidecar/proxy/views.py",)),
    ("context_middleware (request id etc.)", ("context_middleware (sidecar/middlewares.py",)),
]


def report_profile(raw: Path) -> None:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        joined, _, count = line.rpartition(" ")
        if joined and count.isdigit():
            stacks.append((joined.split(";"), int(count)))
    total = sum(c for _, c in stacks) or 1
    out(f"  {total} busy samples; share of the sidecar's CPU time (inclusive):")
    for label, needles in BUCKETS:
        hit = sum(c for frames, c in stacks if any(n in f for f in frames for n in needles))
        out(f"    {100 * hit / total:5.1f}%  {label}")
    leaf: Counter[str] = Counter()
    for frames, c in stacks:
        leaf[frames[-1].split(" (")[0] + " (" + frames[-1].rpartition("/")[2]] += c
    out("  top self time (leaf frames):")
    for name, c in leaf.most_common(12):
        out(f"    {100 * c / total:5.1f}%  {name}")


# --- main ----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--quick", action="store_true", help="one round, shorter runs")
    parser.add_argument("--profile", action="store_true", help="also py-spy the sidecar")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    parser.add_argument(
        "--transfer-mib", type=int, default=100, help="size of the transfer scenario (MiB)"
    )
    args = parser.parse_args(argv)
    chosen = args.scenario or list(SCENARIOS)
    plan = dataclasses.replace(QUICK if args.quick else FULL, transfer_mib=args.transfer_mib)
    for tool in ("nginx", "wrk", "redis-server", "taskset", "curl"):
        if shutil.which(tool) is None:
            out(f"{tool} is missing: apt-get install -y nginx wrk redis-server curl util-linux")
            return 2
    os.sched_setaffinity(0, {int(DRIVER_CPU)})
    started = time.monotonic()
    stack = Stack(download_mib=plan.transfer_mib)
    summary: dict[str, object] = {}
    try:
        out(
            f"sidecar bench: {', '.join(chosen)}{' (quick)' if args.quick else ''}; "
            f"proxies under test pinned to CPU {SERVER_CPU}, wrk/curl/driver, upstream nginx, "
            f"redis and emulator pinned to CPU {DRIVER_CPU} (taskset); all on 127.0.0.1"
        )
        upstream = stack.upstream()
        redis = stack.redis()
        emulator = stack.emulator()
        bare = stack.bare_proxy(upstream)
        nginx = stack.nginx_proxy(upstream)
        port = free_port()
        env = stack.sidecar_env(
            port=port, public_port=port, api=upstream, auth=emulator, redis=redis
        )
        main_proc = stack.sidecar("sidecar", env)
        cookie = asyncio.run(login(f"http://127.0.0.1:{port}", emulator))
        sidecar = Target("sidecar", f"http://127.0.0.1:{port}", main_proc.pid, cookie)
        targets = [bare, nginx, sidecar]
        for target in targets:  # warm-up and a sanity check
            check = wrk(target, SMALL, seconds=1, connections=8)
            if check.errors:
                raise RuntimeError(f"{target.name} answered errors on {SMALL}: {check}")
        if "small_get" in chosen:
            small_get(targets, plan, summary)
        if "jql" in chosen:
            jql(targets, plan, summary)
        if "transfer" in chosen:
            transfer(targets, plan, summary, stack.tmp)
        if "sse" in chosen:
            sse(targets, plan, summary, upstream)
        if args.profile:
            profile(sidecar, plan.seconds + 2, stack.tmp)
        if "variants" in chosen:
            variants(stack, plan, env, emulator, sidecar)
        if "storm" in chosen:
            storm(stack, plan, summary, upstream, redis)
        if "workers" in chosen:
            workers(stack, plan, summary, env, cookie)
    finally:
        stack.close(keep_logs=args.keep)
        if args.keep:
            out(f"logs kept in {stack.tmp}")
    out(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
