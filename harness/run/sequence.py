"""How a run goes through its PHASES: the body in order until the first error, then the
cleanup whatever happened (shielded from signals), then what comes after the journal is final.
`run` is the harness.run.core.Run; each phase is looked up on it by name, so a subclass or a
test can replace one step."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from harness.errors import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_OK,
    HarnessError,
    Inconclusive,
    Interrupted,
)
from harness.journal import RunStatus
from harness.run.events import PhaseChanged
from harness.run.phases import PHASES, Phase, Stage, of
from harness.run.result import RunResult
from harness.runtime.signals import exit_signals, shielded
from harness.verdict.assertions import FAILED, PASSED


def enter(run: Any, phase: Phase) -> None:
    run.phase = phase.name
    run.events.emit(PhaseChanged(phase.name))


def bring_up(run: Any) -> RunResult:
    """`harness up`: build, start and check the stack, then leave it running."""
    result = RunResult(run.run_id, run.run_dir, EXIT_INCONCLUSIVE, RunStatus.ERROR)
    with exit_signals():
        try:
            for phase in of(PHASES, Stage.BODY, bring_up=True):
                run._enter(phase)
                phase.run(run)
            result.exit_code, result.status = EXIT_OK, RunStatus.UP
        except HarnessError as exc:
            result.error, result.exit_code = str(exc), exc.exit_code
            run._abandon()
        except BaseException:
            run._abandon()
            raise
        finally:
            if run.exporter is not None:
                run.exporter.close()
    run.journal.data.update(status=result.status, exit_code=result.exit_code)
    run.journal.save()
    return result


def execute(run: Any) -> RunResult:
    result = RunResult(run.run_id, run.run_dir, EXIT_INCONCLUSIVE, RunStatus.ERROR)
    run.load_ahead = True  # the load follows the baseline: Locust may start up meanwhile
    with exit_signals():
        try:
            for phase in of(PHASES, Stage.BODY):
                run._enter(phase)
                phase.run(run)
            result.results = run.results
            failed = any(r.status == FAILED for r in result.results)
            all_ok = all(r.status == PASSED for r in result.results)
            result.exit_code = EXIT_FAILED if failed else (EXIT_OK if all_ok else EXIT_INCONCLUSIVE)
            result.status = (
                RunStatus.FAILED
                if failed
                else (RunStatus.PASSED if all_ok else RunStatus.INCONCLUSIVE)
            )
        except HarnessError as exc:
            result.error = str(exc)
            result.exit_code = exc.exit_code
            result.status = (
                RunStatus.INTERRUPTED
                if isinstance(exc, Interrupted)
                else (RunStatus.INCONCLUSIVE if isinstance(exc, Inconclusive) else RunStatus.ERROR)
            )
            run.journal.data["error"] = result.error
        except (
            Exception
        ) as exc:  # a bug or an unexpected library error: still clean up, still report
            (run.run_dir / "traceback.txt").write_text(traceback.format_exc())
            result.error = f"internal error: {exc!r} (traceback in {run.run_dir}/traceback.txt)"
            run.journal.data["error"] = result.error
        finally:
            with shielded():
                run._cleanup()
    result.summary = run.journal["summary"]
    run.journal.data.update(status=result.status, exit_code=result.exit_code, ended_at=time.time())
    run.journal.save()
    for phase in of(PHASES, Stage.AFTER):
        run._enter(phase)
        phase.run(run)
    return result


def abandon(run: Any) -> None:
    """A bring-up that failed leaves nothing behind, --keep or not."""
    with shielded():
        run.keep = False
        run._cleanup()


def cleanup(run: Any) -> None:
    for phase in of(PHASES, Stage.CLEANUP):
        run._enter(phase)
        phase.run(run)


def down(run: Any, teardown: Callable[[str], tuple[int, int]]) -> None:
    """Faults rolled back, Locust stopped, watchers and exporter closed; the run's containers
    and network removed (`teardown`) unless --keep."""
    if run.schedule is not None:
        run.schedule.rollback_all()
    if run.locust is not None:
        run.locust.stop()
    if run.watchers is not None:
        run.watchers.stop()
    if run.grafana is not None:
        run.grafana.close()
    # The exporter's server stops within its 0.5 s poll: meanwhile the stack goes.
    closing = threading.Thread(target=run.exporter.close) if run.exporter else None
    if closing is not None:
        closing.start()
    try:
        if run.keep and run.plan is not None:
            run.say(f"--keep: run {run.run_id} left up; remove it with `harness down {run.run_id}`")
            return
        with run.journal.phase("down") as ph:
            removed = teardown(run.run_id)
            ph.update(containers_removed=removed[0], networks_removed=removed[1])
    finally:
        if closing is not None:
            closing.join()
