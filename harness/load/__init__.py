"""Load: Locust in its own process (importing locust gevent-patches the whole process, so it must
never be imported by the harness itself) and the plugin loaded into that process.

This package's `__init__` imports nothing: `python -m harness.load.locust_main` must reach
`import locust` before docker/requests/ssl are imported anywhere.
"""
