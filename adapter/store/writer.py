"""Group commit: the writes of many request threads share one transaction and one disk flush.

A Bv03 may only leave after the commit that stores its message, and every commit costs a flush and
(on SQLite) the single write lock. Leader/follower: a thread that finds no commit under way becomes
the leader and commits everything queued (its own write and whatever arrived meanwhile); threads
that arrive while a commit runs queue up and wait. After each batch the leader wakes the waiters it
served and, if more are queued, hands the lead to the oldest of them. There is no extra thread, so an
idle system pays nothing for batching.

A batch that fails as a whole is retried one write per transaction, so one bad write never fails the
others; a store that cannot commit fails every waiter of that batch with StoreUnavailable (the
channel answers StUF046). Nothing is acknowledged that was not committed.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from adapter.errors import StoreUnavailable
from adapter.logs import get_logger
from adapter.store.db import transaction

T = TypeVar("T")
log = get_logger("adapter.store.writer")


@dataclass
class _Pending:
    write: Callable[[Connection], Any]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # set when this waiter must take over as leader
    result: Any = None
    error: BaseException | None = None


class GroupCommitWriter:
    def __init__(self, engine: Engine, *, max_batch: int = 128) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._leader = False
        self._closed = False

    def run(self, write: Callable[[Connection], T]) -> T:
        """Run ``write`` inside a committed transaction; return its result or raise its error."""
        if self._closed:
            raise StoreUnavailable("store unavailable: writer is shut down")
        me = _Pending(write)
        with self._lock:
            self._queue.append(me)
            leading = not self._leader
            self._leader = True
        if not leading:
            me.done.wait()
            if not me.lead:
                return self._outcome(me)
        self._lead(me)
        return self._outcome(me)

    def close(self) -> None:
        self._closed = True

    @staticmethod
    def _outcome(p: _Pending) -> Any:
        if p.error is not None:
            raise p.error
        return p.result

    def _lead(self, me: _Pending) -> None:
        """Commit batches until our own write is done, then pass the lead on (or step down)."""
        while True:
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._commit(batch)
            for p in batch:
                if p is not me:
                    p.done.set()
            if me in batch:
                break
        with self._lock:
            if self._queue:
                nxt = self._queue[0]
                nxt.lead = True
                nxt.done.set()
            else:
                self._leader = False

    def _commit(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        results: list[Any] = []
        try:
            with transaction(self.engine) as conn:
                for p in batch:
                    results.append(p.write(conn))
        except StoreUnavailable as exc:
            for p in batch:
                p.error = exc
            return
        except Exception as exc:
            if len(batch) > 1:
                log.warning("batch failed, retrying its writes one by one", size=len(batch), error=type(exc).__name__)
                for p in batch:
                    self._commit([p])
                return
            batch[0].error = exc
            return
        for p, value in zip(batch, results, strict=True):
            p.result = value
