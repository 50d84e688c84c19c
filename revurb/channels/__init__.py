"""Channels by name prefix, the per-app channel manager and presence rosters."""
