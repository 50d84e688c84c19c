"""How settings are read: config files, the environment and defaults (public names in revurb.config)."""
