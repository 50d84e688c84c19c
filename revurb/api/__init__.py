"""The Pusher HTTP API: signed requests that publish events and query channels, users, sockets."""
