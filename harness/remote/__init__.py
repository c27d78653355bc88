"""`runtime: hosts`: faults on existing machines over SSH, with the host's own tools.

The harness builds and starts nothing there. It connects through testinfra's `ssh://` backend,
which runs the OpenSSH client, so the user's ssh config and agent decide keys, jump hosts and
host-key checking (`HARNESS_SSH_CONFIG` names another config file). Every fault is a list of
shell commands with the commands that undo it; both are journaled before the first one runs,
so `harness gc` can undo a fault from the journal alone after the harness was SIGKILLed.

- targets.py: the topology's hosts as instances; the `allow:` ranges and `lab:` guard
- shell.py: running a command on a host (SSH), or printing it (dry run)
- faults.py: kill / stop / restart / vip_failover / partition / latency as commands
- chaos.py: the chaos steps applied on schedule, journaled, rolled back in `finally`
- cli.py: `harness hosts check|chaos FILE [--dry-run] [--i-know]`
"""
