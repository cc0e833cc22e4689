"""Priorities (score plugins): one module each, registered by name in `extender.engine.registry`."""
