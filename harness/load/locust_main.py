"""Entry point of the Locust child process: gevent first, then locust, then the harness plugin."""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import locust  # noqa: E402,F401  (import order matters: see harness/load/__init__.py)
from locust.main import main  # noqa: E402

import harness.load.plugin  # noqa: E402,F401  (registers the metrics listeners)

if __name__ == "__main__":
    sys.exit(main())
