"""Backends: where cluster-wide state lives and how events reach other nodes."""
