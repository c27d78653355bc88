"""testinfra checks of a web node's PHP-FPM after the load (`testinfra:` assertion, see
topologies/examples/opcache-off.yaml): the pool that served the run is asked itself, not its
config files, so an override or an ini file loaded later cannot hide a defect.

- the pool has enough workers for the node (pm.max_children, as PHP-FPM parsed its config);
- it never ran out of them during the load (`max children reached` in the pool's status);
- OPcache is on in the running pool (a PHP probe run through the pool's own FastCGI socket).
"""

import json
import re
import shlex

MIN_WORKERS = 4
SOCKET = "/run/php/php8.2-fpm.sock"
PROBE = "/tmp/harness-opcache-probe.php"
PROBE_CODE = (
    "<?php $s = function_exists('opcache_get_status') ? opcache_get_status(false) : false; "
    "echo json_encode(['enabled' => is_array($s) && !empty($s['opcache_enabled'])]);"
)


def fastcgi(host, script):
    """What the running pool answers for `script`, asked on its own socket (cgi-fcgi)."""
    return host.check_output(
        f"SCRIPT_FILENAME={script} SCRIPT_NAME={script} REQUEST_METHOD=GET "
        f"cgi-fcgi -bind -connect {SOCKET}"
    )


def fpm_status(host):
    """The pool's status page (`pm.status_path`)."""
    out = fastcgi(host, "/fpm-status")
    return dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in out.splitlines()) if v
    )


def test_pool_has_enough_workers(host):
    # `php-fpm -tt` prints the configuration PHP-FPM parsed (every pool.d file, every override).
    out = host.run("php-fpm8.2 -tt").stderr
    found = re.findall(r"pm\.max_children = (\d+)", out)
    assert found, f"php-fpm8.2 -tt printed no pm.max_children: {out[-300:]}"
    assert min(int(n) for n in found) >= MIN_WORKERS


def test_pool_never_ran_out_of_workers(host):
    status = fpm_status(host)
    assert status.get("max children reached") == "0", status


def test_opcache_is_on_in_the_running_pool(host):
    host.check_output(f"printf '%s' {shlex.quote(PROBE_CODE)} > {PROBE} && chmod 644 {PROBE}")
    try:
        out = fastcgi(host, PROBE)
    finally:
        host.run(f"rm -f {PROBE}")
    body = out.strip().splitlines()[-1]  # after the CGI headers
    assert json.loads(body) == {"enabled": True}, out
