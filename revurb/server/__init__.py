"""The Starlette app: routes, lifespan and the WebSocket endpoint adapter."""
