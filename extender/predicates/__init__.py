"""Predicates (filter plugins): one module each, registered by name in `extender.engine.registry`."""
