"""`uvicorn revurb.asgi:app`: the app built from the environment and config files."""

from revurb.config import load_settings
from revurb.server.app import create_app

app = create_app(load_settings())
