"""The background worker of add()'s phase 2.

One thread takes batches from a bounded queue, in the order they were added, and merges
the queued batches of the same user into one (fewer model calls, one embedding pass); each
user's batches keep their order. A
full queue blocks add() (back-pressure) instead of growing without bound. A batch that
fails is recorded by the caller's `on_failure` and retried after a delay; once its
retries are spent its turns stay pending in the session tier and the next open retries
them. Nothing here is the source of truth: the queue can be lost at any time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._models import Turn

logger = logging.getLogger("tiermem")


@dataclass
class _Batch:
    user_id: str
    turns: list[Turn]
    attempt: int = 0


class ExtractionWorker:
    """Runs `process(user_id, turns)` off the caller's thread.

    Args:
        process: phase 2 for one batch; raises on failure.
        on_failure: records a failure; returns how many times the batch has failed.
        idle: called when the queue is empty (index catch-up); its errors are logged.
        queue_size: batches waiting at most before submit() blocks.
        max_batch_turns: turns merged into one batch at most.
        retry_delays: seconds before each retry of a failed batch.
    """

    def __init__(
        self,
        process: Callable[[str, Sequence[Turn]], object],
        on_failure: Callable[[str, Sequence[Turn], BaseException], int],
        *,
        idle: Callable[[], None] | None = None,
        queue_size: int = 256,
        max_batch_turns: int = 64,
        retry_delays: Sequence[float] = (0.5, 2.0, 8.0, 30.0),
    ):
        self._process = process
        self._on_failure = on_failure
        self._idle = idle
        self._max_queue = queue_size
        self._max_batch = max_batch_turns
        self._delays = tuple(retry_delays)
        self._queue: deque[_Batch] = deque()
        self._retries: list[tuple[float, int, _Batch]] = []  # heap by due time
        self._counter = itertools.count()
        self._busy = 0
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="tiermem-extract", daemon=True)
        self._thread.start()

    # -- the caller's side ----------------------------------------------------------------
    def submit(self, user_id: str, turns: Sequence[Turn], *, block: bool = True) -> None:
        """Queue a batch; blocks while the queue is full (unless block=False: recovery)."""
        with self._cond:
            while block and len(self._queue) >= self._max_queue and not self._stopping:
                self._cond.wait()
            self._queue.append(_Batch(user_id, list(turns)))
            self._cond.notify_all()

    def retry_later(self, user_id: str, turns: Sequence[Turn], attempt: int) -> None:
        """Schedule a batch that failed elsewhere (inline phase 2) for a retry."""
        with self._cond:
            self._schedule(_Batch(user_id, list(turns), attempt))

    def _schedule(self, batch: _Batch) -> bool:
        if batch.attempt > len(self._delays):
            logger.error("tiermem: extraction of %d turns of %r failed %d times; they stay pending until the next open",
                         len(batch.turns), batch.user_id, batch.attempt)
            return False
        due = time.monotonic() + self._delays[batch.attempt - 1]
        heapq.heappush(self._retries, (due, next(self._counter), batch))
        self._cond.notify_all()
        return True

    @property
    def pending_batches(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._retries) + self._busy

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued, running or waiting for a retry. False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._retries and not self._busy, timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Finish what is queued (within `timeout`), then stop. Returns whether all finished;
        what did not stays pending in the session tier for the next open."""
        done = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=max(1.0, timeout or 0.0))
        return done

    # -- the worker's side ------------------------------------------------------------------
    def _next(self) -> _Batch | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if self._retries and self._retries[0][0] <= now:
                    batch = heapq.heappop(self._retries)[2]
                elif self._queue:
                    batch = self._queue.popleft()
                    self._gather(batch)
                else:
                    wait = self._retries[0][0] - now if self._retries else 1.0
                    if not self._cond.wait(timeout=min(wait, 1.0)) and not self._retries and self._idle:
                        self._cond.release()
                        try:
                            self._run_idle()
                        finally:
                            self._cond.acquire()
                    continue
                self._busy += 1
                self._cond.notify_all()  # room in the queue: wake a blocked submit()
                return batch

    def _gather(self, batch: _Batch) -> None:
        """Merge the user's other queued batches into this one, in their order (other users'
        batches keep theirs): one extraction call and one embedding pass for all of them."""
        rest: deque[_Batch] = deque()
        while self._queue:
            item = self._queue.popleft()
            if item.user_id == batch.user_id and len(batch.turns) + len(item.turns) <= self._max_batch:
                batch.turns += item.turns
            else:
                rest.append(item)
                if item.user_id == batch.user_id:
                    break  # full: later batches of this user must wait behind this one
        rest.extend(self._queue)
        self._queue = rest

    def _run_idle(self) -> None:
        try:
            if self._idle:
                self._idle()
        except Exception as exc:
            logger.warning("tiermem: background index catch-up failed: %r", exc)

    def _run(self) -> None:
        while True:
            batch = self._next()
            if batch is None:
                return
            try:
                self._process(batch.user_id, batch.turns)
            except BaseException as exc:  # recorded and retried: a failure must not kill the worker
                try:
                    batch.attempt = self._on_failure(batch.user_id, batch.turns, exc)
                except Exception as record_exc:
                    logger.error("tiermem: could not record an extraction failure: %r", record_exc)
                    batch.attempt += 1
                with self._cond:
                    self._schedule(batch)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
