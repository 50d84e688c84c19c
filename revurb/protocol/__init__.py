"""The Pusher protocol core: frames, codes, auth and the message handler. No web framework here."""
