"""Replay-memory throughput on this box: RedisReplay insert and sample rates vs raw redis-benchmark SET.

    .venv/bin/python benchmarks/replay_throughput.py [--seconds 3] [--segment-len 1000] [--writers 1]

Starts its own private redis-server (no persistence unless --aof) and measures, for Pendulum-size transitions
(obs 3×f32, action 1×f32, reward f32, terminated, truncated, next_obs 3×f32 = 34 B) and for 64×64×3 uint8
observations (obs + next_obs = 24.6 KB per transition):
  * insert transitions/s through RedisReplay.add (encode + MULTI/Lua write + FIFO eviction at capacity),
  * sampled windows/s (batch 256, window 6): warm (the sampler's mirror holds the replay) and cold (a sampler
    with no cache, fetching every segment of every batch from Redis),
  * `redis-benchmark -t set -d <encoded segment size>` on the same server: the raw SET ceiling.
The last line is one JSON object; its four headline keys are for the Pendulum-size case.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ami.memory import EmbeddedRedisConfig, ReplayConfig, Segment, SegmentMeta, encode_segment  # noqa: E402
from ami.memory.embedded import EmbeddedRedis  # noqa: E402
from ami.memory.redis_replay import RedisReplay  # noqa: E402

BATCH, WINDOW = 256, 6


def make_segments(kind: str, length: int, count: int = 16, seed: int = 0) -> list[Segment]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if kind == "pendulum":
            obs = rng.standard_normal((length, 3)).astype(np.float32)
            nxt = rng.standard_normal((length, 3)).astype(np.float32)
        else:
            obs = rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8)
            nxt = rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8)
        term = np.zeros(length, bool)
        term[rng.integers(0, length)] = True
        data = {"obs": obs, "action": rng.standard_normal((length, 1)).astype(np.float32),
                "reward": rng.standard_normal(length).astype(np.float32), "terminated": term,
                "truncated": np.zeros(length, bool), "next_obs": nxt}
        out.append(Segment(data, SegmentMeta(0, f"bench-{kind}", i, 0, 0)))
    return out


def _insert_worker(url, namespace, capacity, kind, length, seconds, flush, seed, queue):
    segs = make_segments(kind, length, seed=seed)
    cfg = ReplayConfig(urls=(url,), namespace=namespace, capacity_transitions=capacity,
                       write_flush_segments=flush)
    rep = RedisReplay(cfg)
    n = nbytes = 0
    sizes = [len(encode_segment(s)) for s in segs]
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(8):
            k = n % len(segs)
            rep.add(segs[k])
            nbytes += sizes[k]
            n += 1
    rep.flush()
    dt = time.perf_counter() - t0
    assert rep.stats()["dropped_transitions"] == 0
    rep.close()
    queue.put((n * length, nbytes, dt))


def bench_insert(url, namespace, capacity, kind, length, seconds, flush, writers) -> tuple[float, float]:
    """(transitions/s, encoded bytes/s) summed over `writers` processes."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_insert_worker,
                         args=(url, namespace, capacity, kind, length, seconds, flush, i, q)) for i in range(writers)]
    for p in procs:
        p.start()
    res = [q.get(timeout=seconds * 10 + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(r[0] / r[2] for r in res), sum(r[1] / r[2] for r in res)


def bench_sample(url, namespace, capacity, seconds, cache_bytes) -> float:
    cfg = ReplayConfig(urls=(url,), namespace=namespace, capacity_transitions=capacity, seed=0,
                       sample_cache_bytes=cache_bytes)
    rep = RedisReplay(cfg)
    if cache_bytes:  # warm up: the first batches fetch every segment once
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 60:
            st = rep.stats()
            if st["fetched_segments"] >= st["size_segments"]:
                break
            for _ in range(20):
                rep.sample(BATCH, WINDOW)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        rep.sample(BATCH, WINDOW)
        n += 1
    dt = time.perf_counter() - t0
    rep.close()
    return n * BATCH / dt


def redis_benchmark_set(server: EmbeddedRedis, value_size: int, seconds: float) -> float:
    """Raw SET requests/s from redis-benchmark (50 clients, default settings) at this value size."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return float("nan")
    n = int(max(2000, min(300_000, 1.5e9 * seconds / 3 / max(value_size, 1))))
    out = subprocess.run([exe, "-h", server.config.bind, "-p", str(server.port), "-t", "set", "-d",
                          str(value_size), "-n", str(n), "-q"], capture_output=True, text=True, timeout=600)
    m = re.findall(r"SET: ([0-9.]+) requests per second", out.stdout.replace("\r", "\n"))
    return float(m[-1]) if m else float("nan")


def run_case(server, kind, length, capacity, args) -> dict:
    ns = f"bench:{kind}:{length}"
    seg_bytes = int(np.mean([len(encode_segment(s)) for s in make_segments(kind, length, count=4)]))
    ins_t, ins_b = bench_insert(server.url, ns, capacity, kind, length, args.seconds, args.flush, args.writers)
    warm = bench_sample(server.url, ns, capacity, args.seconds, 2 << 30)
    cold = bench_sample(server.url, ns, capacity, args.seconds, 0)
    import redis

    redis.Redis.from_url(server.url).flushall()
    set_rps = redis_benchmark_set(server, seg_bytes, args.seconds)
    row = {"case": kind, "segment_len": length, "segment_bytes": seg_bytes, "capacity": capacity,
           "writers": args.writers, "insert_transitions_per_s": ins_t, "insert_bytes_per_s": ins_b,
           "sample_windows_per_s": warm, "sample_windows_per_s_cold": cold,
           "redis_set_requests_per_s": set_rps, "redis_set_bytes_per_s": set_rps * seg_bytes}
    row["insert_vs_set_bytes"] = ins_b / row["redis_set_bytes_per_s"]
    print(f"{kind:8s} T={length:<5d} value={seg_bytes / 1024:8.1f} KiB | insert {ins_t / 1e6:7.2f} M transitions/s "
          f"({ins_b / 1e6:7.1f} MB/s) | sample {warm / 1e3:7.1f} K windows/s warm, {cold / 1e3:6.1f} K cold | "
          f"redis-benchmark SET {set_rps:9.0f} req/s ({row['redis_set_bytes_per_s'] / 1e6:7.1f} MB/s) | "
          f"insert/SET bytes {row['insert_vs_set_bytes']:.2f}", flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each timed phase")
    ap.add_argument("--segment-len", type=int, default=1000, help="steps per segment, Pendulum-size case")
    ap.add_argument("--image-segment-len", type=int, default=50, help="steps per segment, 64x64x3 case")
    ap.add_argument("--extra-pendulum-len", type=int, nargs="*", default=[200],
                    help="further Pendulum segment lengths to report (not in the JSON headline)")
    ap.add_argument("--flush", type=int, default=16, help="write_flush_segments of the writer")
    ap.add_argument("--writers", type=int, default=1, help="writer processes inserting at once")
    ap.add_argument("--aof", action="store_true", help="run the server with appendonly everysec")
    args = ap.parse_args(argv)
    cfg = EmbeddedRedisConfig(appendonly=args.aof)
    rows = []
    with EmbeddedRedis(cfg) as server:
        print(f"redis-server at {server.config.bind}:{server.port}, aof={args.aof}, writers={args.writers}, "
              f"batch={BATCH}, window={WINDOW}", flush=True)
        head = run_case(server, "pendulum", args.segment_len, 1_000_000, args)
        for t in args.extra_pendulum_len:
            rows.append(run_case(server, "pendulum", t, 1_000_000, args))
        img = run_case(server, "image", args.image_segment_len, 10_000, args)
    summary = {k: head[k] for k in ("insert_transitions_per_s", "sample_windows_per_s", "redis_set_bytes_per_s",
                                    "insert_bytes_per_s")}
    summary.update(segment_len=head["segment_len"], segment_bytes=head["segment_bytes"],
                   sample_windows_per_s_cold=head["sample_windows_per_s_cold"],
                   insert_vs_set_bytes=head["insert_vs_set_bytes"], writers=args.writers,
                   image_insert_transitions_per_s=img["insert_transitions_per_s"],
                   image_sample_windows_per_s=img["sample_windows_per_s"],
                   image_sample_windows_per_s_cold=img["sample_windows_per_s_cold"],
                   image_insert_bytes_per_s=img["insert_bytes_per_s"],
                   image_redis_set_bytes_per_s=img["redis_set_bytes_per_s"],
                   other_cases=[{k: r[k] for k in ("segment_len", "insert_transitions_per_s", "insert_bytes_per_s",
                                                   "sample_windows_per_s", "redis_set_bytes_per_s")} for r in rows])
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
