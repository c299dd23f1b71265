"""A long run's status traffic and the driver's memory of it do not grow with the run: an actor's status() answer
(actors/tally.py) has the same shape after 100k simulated steps as after 10k, and so does what the driver keeps
of it (cluster/actor_book.py); crashed incarnations and scaled-away actors are counted once. Pure Python."""

from __future__ import annotations

import random

import msgpack

from ami.actors.tally import LATENCY_EDGES, ActorTally, latency_percentile
from ami.cluster.actor_book import ActorBook, VersionRanges

SEGMENT, POLL, SNAPSHOT = 16, 64, 160
"""Steps per segment, between two driver polls, between two published versions (one every 10 updates)."""


DRAINED = ("returns", "versions_new")
"""The lists a status hands over and forgets: as long as what happened since the last poll, never longer."""


def shape(x):
    """A payload with every list replaced by its length (a drained one by a mark) and every number by its type."""
    if isinstance(x, dict):
        return {k: "drained" if k in DRAINED else shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return len(x)
    return type(x).__name__


def simulate(steps: int, seed: int = 0) -> tuple[dict, ActorBook]:
    """One actor stepping `steps` env steps, polled by the driver every POLL steps; its last status and the
    driver's book."""
    rng, tally, book = random.Random(seed), ActorTally(), ActorBook()
    version = 0
    for t in range(0, steps, SEGMENT):
        if t % SNAPSHOT == 0:
            version += 1
            tally.latency(rng.uniform(0.002, 0.05))
        tally.segment(version, lag=rng.randint(0, 2))
        if t % 200 == 0:
            tally.episode(-rng.uniform(100, 1500))
        if (t + SEGMENT) % POLL == 0:
            st = {"env_steps": t + SEGMENT, "version": version, **tally.report()}
            book.report(0, st)
    return st, book


def test_status_payload_and_driver_memory_are_the_same_size_at_10k_and_100k_steps() -> None:
    short, book_short = simulate(10_000)
    long, book_long = simulate(100_000)
    assert shape(short) == shape(long)
    assert len(long["latency_counts"]) == len(LATENCY_EDGES) + 1
    assert all(len(p[k]) <= 1 for p in (short, long) for k in DRAINED)  # at most one version / episode per poll
    drained = {k: [] for k in DRAINED}
    assert abs(len(msgpack.packb({**long, **drained})) - len(msgpack.packb({**short, **drained}))) <= 8  # ints
    assert shape(book_short.status) == shape(book_long.status)
    assert book_long.versions.ranges == [[1, 625]] and list(book_long.versions) == list(range(1, 626))
    assert sum(long["latency_counts"]) == 625 and long["segments"] == long["env_steps"] // SEGMENT


def test_latency_percentiles_from_the_histogram_are_within_a_bucket() -> None:
    rng = random.Random(1)
    xs = sorted(rng.lognormvariate(-4, 1) for _ in range(5000))
    tally = ActorTally()
    for x in xs:
        tally.latency(x)
    counts = tally.report()["latency_counts"]
    for q in (50, 90):
        exact = xs[int(q / 100 * len(xs))]
        assert abs(latency_percentile(counts, q) / exact - 1) < 0.13
    assert latency_percentile([0] * len(counts), 50) is None
    one = ActorTally()
    one.latency(1e6)  # beyond the last bucket
    assert latency_percentile(one.report()["latency_counts"], 50) == LATENCY_EDGES[-1]


def test_version_ranges_merge() -> None:
    r = VersionRanges()
    for v in (5, 3, 4, 9, 7, 8, 1, 4):
        r.add(v)
    assert r.ranges == [[1, 1], [3, 5], [7, 9]] and list(r) == [1, 3, 4, 5, 7, 8, 9]
    r.add(6)
    r.add(2)
    assert r.ranges == [[1, 9]]


def _status(steps: int, versions: list[int], returns: list[float] = ()) -> dict:
    t = ActorTally()
    for v in versions:
        t.segment(v, 0)
    for x in returns:
        t.episode(x)
    t.latency(0.01)
    return {"env_steps": steps, "version": versions[-1], "node_id": "n", **t.report()}


def test_crashed_incarnations_and_scaled_away_actors_count_once() -> None:
    book = ActorBook()
    assert book.report(0, _status(100, [1, 2], [-5.0])) == [-5.0]
    book.report(1, _status(50, [2]))
    book.report(1, _status(80, [3]))  # a later status of the same incarnation replaces the earlier
    assert book.crashed(0) and not book.crashed(0)  # the second: no word since the first crash
    book.report(0, _status(30, [4]))  # the restarted incarnation counts from 0 again
    book.retire(1)  # scaled away
    book.report(0, _status(60, [4]))
    totals = book.totals()
    assert {i: s["env_steps"] for i, s in totals.items()} == {0: 160, 1: 80}
    assert totals[0]["segments"] == 3 and sum(totals[0]["latency_counts"]) == 2
    assert list(book.versions) == [1, 2, 3, 4] and set(book.status) == {0}
    book.retire(0)
    assert {i: s["env_steps"] for i, s in book.totals().items()} == {0: 160, 1: 80}  # once, after retiring too
