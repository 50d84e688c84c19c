"""Revurb: a Pusher-protocol WebSocket server for Python, ported from Laravel Reverb."""

__version__ = "0.1.0"
