"""Bad topology files: each is reported as `file:line: field: problem (fix)`, one line per problem.

Every case is one edit of `BASE` (a valid topology, line numbers in the margin below) and states
the exact line, the field path and a phrase of the message it must produce.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from harness.errors import SpecError
from harness.spec.loader import load_topology
from harness.spec.models import HAProxyService, Topology

BASE = """\
version: 1
name: ha
services:
  lb:
    kind: haproxy
    replicas: 2
    keepalived: {vip: auto, advert_int: 1s}
    backends: web
    check: {path: /health, interval: 500ms, fall: 2, rise: 2}
  web:
    kind: web
    replicas: 3
    sessions: redis
    depends_on: [redis, mysql]
  redis: {kind: redis}
  mysql: {kind: mariadb}
load:
  users: 20
  spawn_rate: 20
  duration: 30s
chaos:
  - {name: kill web-1, at: 10s, fault: {kill: web-1}}
assertions:
  - session_continuity: {max_lost: 0}
  - error_budget: {max_error_ratio: 0.01}
"""
#  1 version        6 replicas: 2     11 kind: web        16 mysql           21 chaos:
#  2 name           7 keepalived      12 replicas: 3      17 load:           22 - kill web-1
#  3 services:      8 backends        13 sessions         18 users           23 assertions:
#  4 lb:            9 check           14 depends_on       19 spawn_rate      24 - session_continuity
#  5 kind: haproxy 10 web:            15 redis            20 duration        25 - error_budget

MISSING = "<no file>"


def edit(old: str, new: str, text: str = BASE) -> str:
    """`text` with the one occurrence of `old` replaced: a case that edits nothing is a broken case."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def add_link(link: str) -> str:
    return BASE + f"links:\n  - {link}\n"


class Case(NamedTuple):
    id: str
    text: str
    line: int
    field: str
    phrase: str
    problems: int = 1  # how many problems the file reports in all


CHAOS = "  - {name: kill web-1, at: 10s, fault: {kill: web-1}}"
ASSERT_2 = "  - error_budget: {max_error_ratio: 0.01}"
THREE_CYCLE = """\
  redis: {kind: redis, depends_on: [a]}
  a: {kind: redis, depends_on: [b]}
  b: {kind: redis, depends_on: [redis]}"""

# One case per line, as a table: keep the formatter out.
# fmt: off
CASES = [
    # ---- unknown keys, with a did-you-mean hint where one is close
    Case("unknown-top-level-key", BASE + "sevices: {}\n", 26, "sevices", "did you mean 'services'?"),
    Case("unknown-top-level-key-far", BASE + "zzz: 1\n", 26, "zzz", "known keys: allow, assertions, chaos"),
    Case("unknown-service-key", edit("    sessions: redis", "    sesions: redis"), 13, "services.web.sesions", "unknown key 'sesions' (did you mean 'sessions'?)"),
    Case("unknown-nested-key", edit("fall: 2,", "fal: 2,"), 9, "services.lb.check.fal", "did you mean 'fall'?"),
    Case("unknown-kind", edit("kind: haproxy", "kind: haproxxy"), 5, "services.lb.kind", "unknown kind 'haproxxy' (did you mean 'haproxy'?)"),
    Case("missing-kind", edit("  redis: {kind: redis}", "  redis: {replicas: 1}"), 15, "services.redis", "no 'kind' (add kind: one of haproxy"),
    # ---- missing and dangling references
    Case("missing-backends", edit("    backends: web\n", ""), 4, "services.lb.backends", "Field required (add it)"),
    Case("backends-nosuch", edit("backends: web", "backends: nosuch"), 8, "services.lb.backends", "unknown service 'nosuch' (known: lb, mysql, redis, web)"),
    Case("backends-typo", edit("backends: web", "backends: wbe"), 8, "services.lb.backends", "did you mean 'web'?"),
    Case("depends-on-unknown", edit("[redis, mysql]", "[redis, mysql, mysq]"), 14, "services.web.depends_on[2]", "unknown service 'mysq' (did you mean 'mysql'?)"),
    Case("depends-on-self", edit("[redis, mysql]", "[web, redis, mysql]"), 14, "services.web.depends_on[0]", "cannot depend on itself (remove it)"),
    Case("depends-on-cycle-3", edit("  redis: {kind: redis}", THREE_CYCLE), 17, "services.b.depends_on[0]", "dependency cycle b -> redis -> a -> b (redis depends_on a; a depends_on b) (remove 'redis' from b's depends_on)"),
    Case("load-target-unknown", edit("  users: 20", "  users: 20\n  target: lbb"), 19, "load.target", "unknown service 'lbb' (did you mean 'lb'?)"),
    # ---- wrong types and out-of-range values
    Case("replicas-0", edit("replicas: 3", "replicas: 0"), 12, "services.web.replicas", "(use at least 1)"),
    Case("replicas-word", edit("replicas: 3", "replicas: three"), 12, "services.web.replicas", "valid integer, got the text 'three' (write a whole number, e.g. 3)"),
    Case("replicas-100", edit("replicas: 3", "replicas: 100"), 12, "services.web.replicas", "(use at most 20)"),
    Case("replicas-list", edit("replicas: 3", "replicas: [3]"), 12, "services.web.replicas", "valid integer"),
    Case("users-float-inf", edit("users: 20", "users: .inf"), 18, "load.users", "valid integer, got the number inf (write a whole number"),
    Case("spawn-rate-nan", edit("spawn_rate: 20", "spawn_rate: .nan"), 19, "load.spawn_rate", "finite number"),
    Case("depends-on-string", edit("depends_on: [redis, mysql]", "depends_on: redis"), 14, "services.web.depends_on", "valid list (write a list, e.g. [a, b])"),
    Case("service-not-mapping", edit("  redis: {kind: redis}", "  redis: redis"), 15, "services.redis", "valid dictionary (write a mapping"),
    Case("services-list", "version: 1\nname: ha\nservices: [lb, web]\n", 3, "services", "valid dictionary (write a mapping"),
    Case("huge-int", edit("replicas: 3", "replicas: " + "9" * 5000), 12, "services.web.replicas", "'9999999999999999999999999999999999999...' is too large (use at most 9223372036854775807)"),
    Case("huge-hex-top-level", "0x" + "f" * 4000 + "\n", 1, "(top-level)", "'0xfffffffffffffffffffffffffffffffffff...' is too large"),
    Case("bad-date", edit("name: ha", "name: 2024-13-45"), 2, "name", "(quote it to make it a string)"),
    # ---- durations
    Case("duration-parsecs", edit("duration: 30s", "duration: 10parsecs"), 20, "load.duration", "'10parsecs' is not a duration (write e.g. 500ms"),
    Case("duration-negative", edit("duration: 30s", "duration: -1s"), 20, "load.duration", "'-1s' is negative (a duration must be 0 or more"),
    Case("duration-5-sec", edit("duration: 30s", "duration: 5 sec"), 20, "load.duration", "'5 sec' is not a duration (write e.g. 500ms, 2s"),
    Case("duration-inf", edit("duration: 30s", "duration: .inf"), 20, "load.duration", "inf is not a duration"),
    Case("duration-huge", edit("duration: 30s", "duration: 1000h"), 20, "load.duration", "is too long (at most 168h)"),
    Case("duration-in-flow-map", edit("advert_int: 1s", "advert_int: 1 sec"), 7, "services.lb.keepalived.advert_int", "'1 sec' is not a duration"),
    # ---- VIPs and the run network
    Case("keepalived-one-replica", edit("replicas: 2", "replicas: 1"), 7, "services.lb.keepalived", "a VIP needs at least 2 replicas (set replicas: 2)"),
    Case("vip-not-ipv4", edit("vip: auto", "vip: 10.213.7.300"), 7, "services.lb.keepalived.vip", "'10.213.7.300' is not an IPv4 address (write 'auto'"),
    Case("vip-without-subnet", edit("vip: auto", "vip: 10.213.7.200"), 7, "services.lb.keepalived.vip", "an explicit VIP needs network.subnet"),
    Case("vip-outside-subnet", edit("vip: auto", "vip: 192.168.1.5") + "network: {subnet: 10.213.7.0/24}\n", 7, "services.lb.keepalived.vip", "192.168.1.5 is outside network.subnet 10.213.7.0/24 (pick an address inside it, e.g. 10.213.7.200)"),
    Case("vip-is-gateway", edit("vip: auto", "vip: 10.213.7.1") + "network: {subnet: 10.213.7.0/24}\n", 7, "services.lb.keepalived.vip", "is the gateway address"),
    Case("subnet-not-private", BASE + "network: {subnet: 8.8.8.0/24}\n", 26, "network.subnet", "not a private network"),
    Case("subnet-too-small", BASE + "network: {subnet: 10.213.7.0/28}\n", 26, "network.subnet", "'10.213.7.0/28' is a /28 (use a /16 to /24"),
    Case("subnet-host-bits", BASE + "network: {subnet: 10.213.7.9/24}\n", 26, "network.subnet", "has host bits set (write 10.213.7.0/24)"),
    # ---- duplicates
    Case("duplicate-yaml-key", edit("    replicas: 3\n", "    replicas: 3\n    replicas: 4\n"), 13, "services.web.replicas", "duplicate key (keep one)"),
    Case("duplicate-service", BASE.replace("  mysql: {kind: mariadb}", "  mysql: {kind: mariadb}\n  redis: {kind: redis}"), 17, "services.redis", "duplicate key"),
    Case("duplicate-chaos-step", edit(CHAOS, CHAOS + "\n  - {name: kill web-1, at: 12s, fault: {kill: web-2}}"), 23, "chaos[1].name", "duplicate step name 'kill web-1' (names must be unique)"),
    Case("duplicate-assertion", edit(ASSERT_2, ASSERT_2 + "\n" + ASSERT_2), 26, "assertions[2]", "duplicate assertion 'error_budget' (give it a unique name:)"),
    # ---- chaos
    Case("chaos-after-load", edit("at: 10s", "at: 40s"), 22, "chaos[0].at", "40s is not before the end of the load at 30s (move it earlier"),
    Case("chaos-target-unknown", edit("{kill: web-1}", "{kill: web-9}"), 22, "chaos[0].fault.kill.target", "unknown container or service 'web-9'"),
    Case("kill-no-target", edit("{kill: web-1}", "{kill: {restore: true}}"), 22, "chaos[0].fault.kill.target", "Field required (add it)"),
    Case("fault-two-kinds", edit("{kill: web-1}", "{kill: web-1, stop: web-2}"), 22, "chaos[0].fault", "a fault needs exactly one kind, got 2: kill, stop (keep one"),
    Case("fault-no-kind", edit("{kill: web-1}", "{}"), 22, "chaos[0].fault", "got 0: none (write e.g. {kill: web-1})"),
    Case("vip-failover-no-keepalived", edit("{kill: web-1}", "{vip_failover: web}"), 22, "chaos[0].fault.vip_failover.service", "'web' is not a service with a VIP"),
    Case("toxic-on-undeclared-link", edit("{kill: web-1}", "{latency: {link: web->mysql, latency: 100ms}}"), 22, "chaos[0].fault.latency.link", "no link 'web->mysql' in links:"),
    Case("kill-target-wrong-type", edit("{kill: web-1}", "{kill: {target: 5}}"), 22, "chaos[0].fault.kill.target", "Input should be a valid string or a valid dictionary"),
    Case("window-with-for", edit("{kill: web-1}}", "{kill: web-1}, for: 2s, window: 5s}"), 22, "chaos[0].window", "window: is for instantaneous faults, and this step has for: 2s"),
    Case("fault-outlives-load", edit("at: 10s,", "at: 25s, for: 6s,"), 22, "chaos[0].for", "the fault ends at 31s, after the load ends at 30s: the fault would be judged against no traffic (shorten for:"),
    Case("repeat-outlives-load", edit("at: 10s, fault: {kill: web-1}", "at: 10s, repeat: 3, every: 10s, fault: {pause: web-1}"), 22, "chaos[0].repeat", "injection #3 would fire at 30s, as the load ends at 30s"),
    Case("dead-target", edit(CHAOS, CHAOS + "\n  - {name: pause web-1, at: 12s, fault: {pause: web-1}}"), 23, "chaos[1].fault.pause.target", "web-1 is already down: step 'kill web-1' killed it at 10s"),
    Case("no-live-instance", edit("{kill: web-1}}", "{kill: {target: {service: web, pick: all}}}}\n  - {name: again, at: 12s, fault: {stop: web}}"), 23, "chaos[1].fault.stop.target", "no live instance of 'web' is left to pick"),
    Case("no-assertions", edit("assertions:\n  - session_continuity: {max_lost: 0}\n" + ASSERT_2 + "\n", ""), 1, "assertions", "a topology with no assertions can never fail"),
    # ---- links
    Case("link-unknown-service", add_link("{from: web, to: mysqll}"), 27, "links[0].to", "unknown service 'mysqll' (did you mean 'mysql'?)"),
    Case("link-unknown-key", add_link("{from: web, to: mysql, vai: toxiproxy}"), 27, "links[0].vai", "did you mean 'via'?"),
    # ---- assertions
    Case("assertion-two-kinds", edit(ASSERT_2, "  - {error_budget: {}, promql: up, below: 1}"), 25, "assertions[1]", "exactly one kind, got 2: error_budget, promql"),
    Case("promql-without-bound", edit(ASSERT_2, "  - {promql: up}"), 25, "assertions[1]", "a promql assertion needs"),
    Case("during-fault-nosuch", edit(ASSERT_2, "  - {error_budget: {}, during: 'fault:nosuch'}"), 25, "assertions[1].during", "no chaos step named 'nosuch' (known: kill web-1)"),
    Case("during-bad-window", edit(ASSERT_2, "  - {error_budget: {}, during: sometime}"), 25, "assertions[1].during", "(write run, steady, recovery, calm or fault:<chaos step name>)"),
    Case("during-injection-past-repeat", edit(ASSERT_2, "  - {error_budget: {}, during: 'fault:kill web-1#2'}"), 25, "assertions[1].during", "step 'kill web-1' is injected once, so it has no #2"),
    Case("during-injection-in-a-comment", edit(ASSERT_2, "  - error_budget: {}\n    during: fault:kill web-1 #2"), 26, "assertions[1].during", "'#2' after 'fault:kill web-1' starts a YAML comment"),
    Case("fault-injection-past-repeat", edit(ASSERT_2, "  - {ejection_time: {service: web, fault: 'kill web-1 #3'}}"), 25, "assertions[1].ejection_time.fault", "has no #3"),
    # ---- compare
    Case("tolerance-malformed", BASE + "compare: {tolerance: {default: 10pct}}\n", 26, "compare.tolerance.default", "'10pct' is not a tolerance (write +10% relative to the baseline"),
    Case("tolerance-unknown-key", BASE + "compare: {tolerance: {eror_budget: '+1%'}}\n", 26, "compare.tolerance.eror_budget", "(did you mean 'error_budget'?)"),
    Case("baseline-missing", BASE + "compare: {baseline: runs/nosuch}\n", 26, "compare.baseline", "no run directory or journal.json at"),
    # ---- peers that a kind needs
    Case("redis-sessions-without-redis", edit("  redis: {kind: redis}\n", "").replace("[redis, mysql]", "[mysql]"), 13, "services.web.sessions", "sessions: redis needs a service of kind redis"),
    Case("web-without-mariadb", edit("  mysql: {kind: mariadb}\n", "").replace("[redis, mysql]", "[redis]"), 11, "services.web.kind", "needs a service of kind mariadb"),
    # ---- names and version
    Case("service-name-uppercase", edit("  mysql: {kind: mariadb}", "  MySQL: {kind: mariadb}").replace("[redis, mysql]", "[redis]"), 16, "services.MySQL", "'MySQL' is not a valid name (use lowercase letters"),
    Case("service-name-with-space", edit("  mysql: {kind: mariadb}", "  my sql: {kind: mariadb}").replace("[redis, mysql]", "[redis]"), 16, 'services["my\\x20sql"]', "'my sql' is not a valid name"),
    Case("topology-name-uppercase", edit("name: ha", "name: HA"), 2, "name", "(use lowercase letters"),
    Case("version-2", edit("version: 1", "version: 2"), 1, "version", "Input should be 1"),
    # ---- not YAML, not a topology
    Case("yaml-tab", edit("  redis: {kind: redis}", "\tredis: {kind: redis}"), 15, "(yaml)", "(indent with spaces, not tabs)"),
    Case("yaml-unclosed-bracket", edit("[redis, mysql]", "[redis, mysql"), 15, "(yaml)", "invalid YAML: expected ',' or ']'"),
    Case("yaml-recursive-alias", BASE + "seed: &s [*s]\n", 26, "seed[0]", "refers to the value that contains it"),
    Case("yaml-merge-key", edit("  redis: {kind: redis}", "  redis: {<<: {kind: redis}}"), 15, "services.redis", "merge keys (<<) are not supported"),
    Case("yaml-complex-key", BASE + "? [a, b]\n: 1\n", 26, "(top-level)", "a key must be a plain name"),
    Case("empty-file", "", 1, "(file)", "the file is empty (start from topologies/ha.yaml)"),
    Case("comments-only", "# nothing yet\n", 1, "(file)", "the file is empty"),
    Case("top-level-list", "- version: 1\n- name: ha\n", 1, "(top-level)", "a topology must be a mapping"),
    Case("top-level-scalar", "ha\n", 1, "(top-level)", "got 'ha'"),
    Case("file-not-found", MISSING, 1, "(file)", "not found (check the path)"),
    Case("newline-in-value", edit("backends: web", 'backends: "we\\nb"'), 8, "services.lb.backends", "unknown service 'we\\x0ab'"),
]
# fmt: on

PROBLEM = r"^{file}:(\d+): (\S+): (.+)$"


def _problems(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = tmp_path / "topology.yaml"
    if text != MISSING:
        path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_topology(path)
    return str(path), info.value.problems


def test_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(BASE)
    topo = load_topology(path)
    assert isinstance(topo, Topology)
    assert sorted(topo.services) == ["lb", "mysql", "redis", "web"]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path: Path, case: Case) -> None:
    file, problems = _problems(tmp_path, case.text)
    pattern = re.compile(PROBLEM.format(file=re.escape(file)))
    parsed = []
    for problem in problems:
        assert "\n" not in problem and "\r" not in problem and "Traceback" not in problem
        m = pattern.match(problem)
        assert m, f"not `file:line: field: problem`: {problem!r}"
        parsed.append((int(m.group(1)), m.group(2), m.group(3)))
    assert len(problems) == case.problems, problems
    line, field, message = parsed[0]
    assert (line, field) == (case.line, case.field), problems[0]
    assert case.phrase in message, problems[0]


def test_every_message_carries_a_fix(tmp_path: Path) -> None:
    """Every message ends with how to fix it, in parentheses: `(add it)`, `(did you mean 'x'?)`."""
    for case in CASES:
        _, problems = _problems(tmp_path, case.text)
        for problem in problems:
            assert re.search(r" \([^()]+\)$", problem), f"{case.id}: no fix hint: {problem}"


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = edit("backends: web", "backends: nosuch").replace(
        "[redis, mysql]", "[redis, mysql, nope]"
    )
    file, problems = _problems(tmp_path, text)
    assert [p.split(": ")[1] for p in problems] == [
        "services.lb.backends",
        "services.web.depends_on[2]",
    ]
    assert [int(p[len(file) + 1 :].split(":")[0]) for p in problems] == [8, 14]


def test_explicit_vip_inside_the_subnet_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(edit("vip: auto", "vip: 10.213.7.200") + "network: {subnet: 10.213.7.0/24}\n")
    topo = load_topology(path)
    assert topo.network.subnet == "10.213.7.0/24"
    lb = topo.services["lb"]
    assert isinstance(lb, HAProxyService) and lb.keepalived is not None
    assert lb.keepalived.vip == "10.213.7.200"


def test_two_services_cannot_share_a_vip(tmp_path: Path) -> None:
    second_lb = (
        "  lb2: {kind: haproxy, replicas: 2, backends: web, keepalived: {vip: 10.213.7.200}}\n"
    )
    text = edit("vip: auto", "vip: 10.213.7.200").replace("  web:\n", second_lb + "  web:\n", 1)
    file, problems = _problems(tmp_path, text + "network: {subnet: 10.213.7.0/24}\n")
    assert len(problems) == 2
    assert problems[0] == (
        f"{file}:7: services.lb.keepalived.vip: 10.213.7.200 is also the VIP of 'lb2' (give each service its own VIP)"
    )
    assert problems[1].startswith(
        f"{file}:10: services.lb2.keepalived.vip: 10.213.7.200 is also the VIP of 'lb'"
    )


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(BASE)
    bad.write_text(edit("replicas: 3", "replicas: 0"))
    assert main(["validate", str(good)]) == 0
    assert f"{good}: valid (4 services" in capsys.readouterr().out.replace("\n", "")
    assert main(["validate", str(bad)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(
        f"{bad}:12: services.web.replicas: Input should be greater than or equal to 1"
    )


def test_cli_prints_each_problem_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    path = tmp_path / "bad.yaml"
    key = "a_long_unknown_key_" * 12  # the line is well over any console width
    path.write_text(BASE + f"{key}: 1\n")
    assert main(["validate", str(path)]) == 3
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}:26: {key}: unknown key")
    assert lines[0].endswith(")")
