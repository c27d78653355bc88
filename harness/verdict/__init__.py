"""Assertions → PromQL → statuses."""
