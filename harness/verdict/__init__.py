"""Assertions → PromQL → statuses. Each assertion compiles to a Query over its window
(assertions.py dispatches by kind; query.py holds Query, Figure, Result and the run's Scope;
instants.py the latency and fault-instant kinds; data.py, stale.py, canary.py and overload.py
the kinds that build their own Figure; promql.py, windows.py and bounds.py the pieces), which
evaluation.py judges against Prometheus once fresh.py trusts its data; compare.py sets a run
against a baseline run."""
