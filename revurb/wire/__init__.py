"""The vocabulary every layer shares: frames (the only JSON module), codes, errors, auth, the
`Connection` base and the ASGI type aliases. Imports nothing else of Revurb."""
