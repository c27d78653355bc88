"""What the runner holds during a run: fault-window annotations sent from a background thread
(a slow Grafana never delays a fault injection), never raising, counting failures, and giving up
after a few in a row."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.grafana.api import HARNESS_TAG, _normalise_url, annotate, update_annotation_end

log = logging.getLogger(__name__)


class GrafanaAnnotator:
    """Fault-window annotations for one run, safe to call from the runner.

    ``fault_started``/``fault_ended``/``event`` return at once: requests go out from
    one background thread in call order (``background=False`` sends inline, e.g. in
    tests). Nothing here raises into the caller; a failure is logged at WARNING and
    counted in :attr:`failures`. After *max_consecutive_failures* failures in a row
    the annotator gives up for the rest of the run (counting :attr:`dropped`), so a
    dead Grafana costs at most a few timeouts.

    Annotations carry the tags ``harness``, ``run:<run id>`` and, for faults,
    ``fault:<name>``, ``target:<target>`` and ``kind:<kind>``; the overview dashboard
    shows every annotation tagged ``harness``.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        run_id: str | None = None,
        dashboard_uid: str | None = None,
        extra_tags: Iterable[str] = (),
        timeout: float = 3.0,
        background: bool = True,
        max_consecutive_failures: int = 3,
    ) -> None:
        self.url = url
        self._token = token
        self.run_id = run_id
        self.dashboard_uid = dashboard_uid
        self.timeout = timeout
        self.background = background
        self.max_consecutive_failures = max(1, max_consecutive_failures)
        self._base_tags = [HARNESS_TAG, *([f"run:{run_id}"] if run_id else []), *extra_tags]
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._sent = 0
        self._failures = 0
        self._dropped = 0
        self._consecutive = 0
        self._disabled = False
        self._closed = False
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_env(
        cls,
        run_id: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> GrafanaAnnotator | None:
        """From ``GRAFANA_URL`` (required) and ``GRAFANA_TOKEN`` (optional); None if unset."""
        env = os.environ if environ is None else environ
        url = (env.get("GRAFANA_URL") or "").strip()
        if not url:
            return None
        try:
            _normalise_url(url)
        except ValueError as exc:
            log.warning("GRAFANA_URL ignored: %s", exc)
            return None
        token = (env.get("GRAFANA_TOKEN") or "").strip() or None
        return cls(url, token, run_id=run_id, **kwargs)

    def __repr__(self) -> str:  # never show the token
        return f"GrafanaAnnotator(url={self.url!r}, run_id={self.run_id!r}, **{self.stats()})"

    # ----------------------------------------------------------------- counters

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def disabled(self) -> bool:
        return self._disabled

    def stats(self) -> dict[str, int | bool]:
        with self._lock:
            return {
                "sent": self._sent,
                "failures": self._failures,
                "dropped": self._dropped,
                "disabled": self._disabled,
            }

    # ----------------------------------------------------------------- events

    def fault_started(
        self,
        name: str,
        target: str | None = None,
        *,
        kind: str | None = None,
        at: float | None = None,
        text: str | None = None,
    ) -> None:
        """A fault was injected at unix time *at* (default: now)."""
        when = time.time() if at is None else at
        tags = [*self._base_tags, f"fault:{name}"]
        if target:
            tags.append(f"target:{target}")
        if kind:
            tags.append(f"kind:{kind}")
        body = text or f"fault {name!s} injected" + (f" on {target}" if target else "")
        if self.run_id:
            body += f" (run {self.run_id})"

        def send() -> None:
            ann_id = annotate(
                self.url,
                self._token,
                body,
                tags,
                when * 1000,
                dashboard_uid=self.dashboard_uid,
                timeout=self.timeout,
            )
            with self._lock:
                self._ids[name] = ann_id

        self._submit(f"fault_started({name})", send)

    def fault_ended(self, name: str, *, at: float | None = None) -> None:
        """The fault *name* was rolled back at *at* (default: now): close its region.

        If its start annotation was never created, a point annotation is posted instead.
        """
        when = time.time() if at is None else at

        def send() -> None:
            with self._lock:
                ann_id = self._ids.pop(name, None)
            if ann_id is not None:
                update_annotation_end(
                    self.url, self._token, ann_id, when * 1000, timeout=self.timeout
                )
            else:
                annotate(
                    self.url,
                    self._token,
                    f"fault {name} rolled back" + (f" (run {self.run_id})" if self.run_id else ""),
                    [*self._base_tags, f"fault:{name}"],
                    when * 1000,
                    dashboard_uid=self.dashboard_uid,
                    timeout=self.timeout,
                )

        self._submit(f"fault_ended({name})", send)

    def event(self, text: str, *, tags: Iterable[str] = (), at: float | None = None) -> None:
        """A point annotation, e.g. ``"VIP lb-1 -> lb-2"`` with ``tags=["failover"]``."""
        when = time.time() if at is None else at
        all_tags = [*self._base_tags, *tags]

        def send() -> None:
            annotate(
                self.url,
                self._token,
                text,
                all_tags,
                when * 1000,
                dashboard_uid=self.dashboard_uid,
                timeout=self.timeout,
            )

        self._submit(f"event({text})", send)

    # ----------------------------------------------------------------- plumbing

    def _submit(self, what: str, send: Callable[[], None]) -> None:
        try:
            with self._lock:
                if self._disabled or self._closed:
                    self._dropped += 1
                    return

            def job() -> None:
                self._run(what, send)

            if not self.background:
                job()
                return
            self._ensure_thread()
            self._queue.put(job)
        except Exception:  # pragma: no cover - belt and braces: never raise into the run
            log.exception("grafana annotator: could not queue %s", what)

    def _run(self, what: str, send: Callable[[], None]) -> None:
        with self._lock:
            if self._disabled:
                self._dropped += 1
                return
        try:
            send()
        except Exception as exc:  # network, HTTP 4xx/5xx, bad reply: all the same to the run
            with self._lock:
                self._failures += 1
                self._consecutive += 1
                give_up = self._consecutive >= self.max_consecutive_failures and not self._disabled
                if give_up:
                    self._disabled = True
            log.warning("grafana annotation %s failed: %s: %s", what, type(exc).__name__, exc)
            if give_up:
                log.warning(
                    "grafana annotator: %d consecutive failures, no more annotations this run",
                    self.max_consecutive_failures,
                )
        else:
            with self._lock:
                self._sent += 1
                self._consecutive = 0

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._worker, name="grafana-annotator", daemon=True
                )
                self._thread.start()

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                job()
            except Exception:  # pragma: no cover - _run already catches
                log.exception("grafana annotator worker error")
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until queued annotations are sent (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush, then stop the worker. Further events are dropped."""
        done = self.flush(timeout)
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=1.0)
        return done

    def __enter__(self) -> GrafanaAnnotator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
