"""Service kinds: a name → module registry (imported lazily), each module owning its image,
rendered configs, health wait and the scrape targets it brings."""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS: dict[str, str] = {
    "haproxy": "harness.kinds.haproxy",
    "nginx-lb": "harness.kinds.nginx_lb",
    "web": "harness.kinds.web",
    "php-fpm": "harness.kinds.php_fpm",
    "mysql": "harness.kinds.mariadb",
    "custom": "harness.kinds.custom",
    "redis": "harness.kinds.redis",
    "mariadb": "harness.kinds.mariadb",
    "prometheus": "harness.kinds.prometheus",
    "toxiproxy": "harness.kinds.toxiproxy",
}


def get(kind: str) -> ModuleType:
    return importlib.import_module(KINDS[kind])
