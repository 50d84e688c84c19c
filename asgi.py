"""`uvicorn asgi:app` from a checkout: the same app as `revurb.asgi:app`."""

from revurb.asgi import app

__all__ = ["app"]
