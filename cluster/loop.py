"""The driver loop, one for every backend: start, poll -> progress, evaluate, checkpoint, log, stop.

A backend (cluster/inline.py: one process; cluster/ray_driver.py: Ray actors, a learner, an evaluator) only
makes progress and answers questions; every rule of a run lives here or below: the every-N schedules
(learner.pacing.Every) for log lines, evaluations and checkpoints, the evaluation seeds, updates per second,
the progress line and the run-directory writes (through RunBook and RunDir).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from tqdm import tqdm

from ami.cluster.bookkeeping import RunBook
from ami.cluster.config import RunConfig, TrainConfig
from ami.cluster.rundir import RunDir
from ami.learner.pacing import Every

EVAL_SEED_OFFSET = 10_000
"""Evaluation episodes are seeded apart from the envs the actors play in."""


def eval_seed(run: RunConfig, env_steps: int) -> int:
    """The seed of an evaluation taken at `env_steps`: reproducible, and new at every evaluation."""
    return run.seed + EVAL_SEED_OFFSET + env_steps


class Observer(Protocol):
    """The driver's metrics (cluster/observe.py, cluster/inline_metrics.py)."""

    driver: object
    """telemetry.metrics.DriverMetrics: evaluation(), progress(), ..."""

    def progress(self, book: RunBook, target: int, updates_per_s: float, live: int,
                 replay_stats: Mapping | None) -> None: ...


class Backend(Protocol):
    """What the driver loop asks of a backend."""

    obs: Observer
    """The run's driver metrics."""
    env_steps: int
    """Env steps of the run so far (a resumed run's included)."""
    updates: int
    """Updates so far."""
    version: int
    """Newest weights version."""
    learner_up: bool
    """The learner answers (a crashed Ray learner does not, until it is restored)."""
    live: int
    """Processes stepping envs."""

    def step(self) -> bool:
        """Make progress once (inline: one vector step and the updates it owes; Ray: one poll of every process);
        False once the run's env steps are all collected."""

    def returns(self) -> list[float]:
        """Returns of the episodes finished since the last call."""

    def can_evaluate(self) -> bool:
        """An evaluation may start now."""

    def start_eval(self, seed: int) -> None:
        """Evaluate the newest weights (Ray: asynchronously)."""

    def evaluations(self, block: bool = False) -> list[tuple[dict, int, int]]:
        """Finished evaluations as (result, env steps when started, updates then); `block`: wait for those in
        flight."""

    def evaluate_now(self, seed: int) -> dict:
        """Evaluate the current weights and wait (the final evaluation)."""

    def checkpoint(self, counters: dict) -> bytes | None:
        """The learner's checkpoint bytes with the run's `counters` (None: the learner is not answering)."""

    def replay_size(self) -> int: ...

    def replay_stats(self) -> Mapping | None: ...

    def log_extras(self) -> dict:
        """The update metrics since the last log line (drained) and the backend's own figures."""

    def postfix(self) -> dict:
        """The backend's own fields of the progress line."""

    def finish(self, interrupted: bool) -> None:
        """Stop collecting; run the updates still owed unless interrupted; leave nothing unstored."""

    def extras(self, interrupted: bool) -> dict:
        """The backend's keys of summary.json."""


class _Rate:
    """Updates per wall second, over windows of at least a second (both backends' gauge and log lines)."""

    def __init__(self, updates: int):
        self.t, self.n, self.value = time.perf_counter(), updates, 0.0

    def tick(self, updates: int) -> bool:
        """True when a new window closed (its rate is in `value`)."""
        now = time.perf_counter()
        if now - self.t < 1.0:
            return False
        if updates >= self.n:  # (a restored learner counts from its checkpoint: that window shows nothing)
            self.value = (updates - self.n) / (now - self.t)
        self.t, self.n = now, updates
        return True


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _ignore(signum, frame) -> None:
    """A Python no-op, not SIG_IGN: processes started meanwhile must not inherit an ignored SIGTERM."""


@contextmanager
def sigterm_stops() -> Iterator[Callable[[], None]]:
    """While the driver loop runs, SIGTERM (what Kubernetes, `ray job stop` and most schedulers send) takes
    Ctrl-C's path: a KeyboardInterrupt, so actors stop and flush, the final checkpoint and summary.json are
    written and every service ami started is stopped. Installed here, once Ray is up: `ray.init` installs a
    SIGTERM handler of its own that exits at once. Yields `finishing()`: from then on a repeated SIGTERM is
    ignored rather than cutting the final checkpoint short. Restores the previous handler at the end. (Only the
    main thread may install handlers: elsewhere, as in tests that call `main()` on a thread, it does nothing.)"""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield lambda: signal.signal(signal.SIGTERM, _ignore)
    finally:
        signal.signal(signal.SIGTERM, before)


def drive(cfg: TrainConfig, run: RunDir, book: RunBook, backend: Backend, record: dict | None,
          progress: bool) -> dict:
    """Run `backend` to the end of the run; returns the summary (also written to summary.json). `record`: the
    config.yaml of a new run (None: resumed). Ctrl-C or SIGTERM ends it early, as cleanly."""
    with sigterm_stops() as finishing:
        return _drive(cfg, run, book, backend, record, progress, finishing)


def _drive(cfg: TrainConfig, run: RunDir, book: RunBook, backend: Backend, record: dict | None, progress: bool,
           finishing: Callable[[], None]) -> dict:
    r = cfg.run
    if record is not None:
        run.write_config(record)
    logs, evals = Every(r.log_every, book.env_steps), Every(r.eval_every, book.env_steps)
    ckpts = Every(cfg.learner.checkpoint_every, backend.updates)
    rate = _Rate(backend.updates)
    bar = tqdm(total=r.steps, initial=book.env_steps, disable=not progress, unit="step", dynamic_ncols=True)
    interrupted = False
    try:
        while backend.step():
            book.env_steps = backend.env_steps
            book.add_episodes(backend.returns())
            _record(book, backend)
            if backend.can_evaluate() and evals.due(book.env_steps):
                backend.start_eval(eval_seed(r, book.env_steps))
                _record(book, backend)
            marks = ckpts.due(backend.updates) if backend.learner_up else 0
            if marks:
                _checkpoint(run, book, backend, marks)
            if logs.due(book.env_steps) and backend.learner_up:
                book.log_line(backend.updates, backend.version, backend.replay_size(),
                              {**backend.log_extras(), "updates_per_s": rate.value})
            if rate.tick(backend.updates):
                backend.obs.progress(book, r.steps, rate.value, backend.live, backend.replay_stats())
                bar.n = book.env_steps
                ev = book.last_eval.get("eval_return_mean")
                bar.set_postfix(ep=book.episodes, eval="-" if ev is None else f"{ev:.1f}", upd_s=f"{rate.value:.1f}",
                                **backend.postfix(), refresh=True)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM
        interrupted = True  # stop cleanly: the final checkpoint and summary still follow
    finally:
        finishing()
        bar.n = book.env_steps
        bar.close()
    backend.finish(interrupted)
    book.env_steps = backend.env_steps
    book.add_episodes(backend.returns())
    _record(book, backend, block=True)
    if book.needs_final_eval():
        res = backend.evaluate_now(eval_seed(r, book.env_steps))
        book.eval_line(res, backend.updates)
        backend.obs.driver.evaluation(res)
    _checkpoint(run, book, backend, ckpts.due(backend.updates))  # (marks the multiples the last updates passed)
    backend.obs.progress(book, r.steps, 0.0, 0, backend.replay_stats())
    return book.summary(backend.updates, backend.version, backend.extras(interrupted))


def _record(book: RunBook, backend: Backend, block: bool = False) -> None:
    """Write the evaluations that finished (each at the env steps it started at)."""
    for res, at, updates in backend.evaluations(block):
        book.eval_line(res, updates, at)
        backend.obs.driver.evaluation(res)


def _checkpoint(run: RunDir, book: RunBook, backend: Backend, marks: int) -> None:
    """Write the learner's checkpoint; it marks `marks` multiples of learner.checkpoint_every."""
    data = backend.checkpoint(book.counters())
    if data is not None:
        run.write_checkpoint(data)
        book.checkpoint_marks += marks
