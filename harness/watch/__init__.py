"""Watchers: what the stack looks like right now (VIP holder, backend state)."""
