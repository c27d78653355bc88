"""Spec → plan: what to create, where, with which files, in which order."""
