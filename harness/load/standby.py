"""Entry point of a Locust child started ahead of its load, while the run's baseline is checked:
it imports gevent, Locust and the harness plugin (most of its start-up, ~0.6 s) at once, then
waits for HARNESS_GO_FILE before Locust's own main runs (and the load starts). It exits without
starting if the harness that started it is gone, or after HARNESS_GO_TIMEOUT seconds.
Never import it into the harness: it gevent-patches the process (see harness/load/__init__)."""

from harness.load import locust_main  # noqa: I001 - gevent patched first, then locust, the plugin

import os  # noqa: E402
import sys  # noqa: E402

from harness.load.gate import wait_for_go  # noqa: E402

if __name__ == "__main__":
    env = os.environ
    parent, timeout = int(env["HARNESS_PARENT_PID"]), float(env.get("HARNESS_GO_TIMEOUT", "300"))
    if not wait_for_go(env["HARNESS_GO_FILE"], parent, timeout):
        sys.exit(3)
    sys.exit(locust_main.main())
