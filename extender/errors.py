"""The errors the extender raises across its layers, each carrying a message meant for a person."""

from __future__ import annotations


class ExtenderError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ExtenderError):
    """A configuration (policy or inventory) that cannot be used; lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InventoryError(ConfigError):
    """The inventory files are missing or malformed."""


class PolicyError(ConfigError):
    """The policy file is missing or malformed, or names unknown plugins."""


class VMRequestError(ExtenderError):
    """A pod's VM request that cannot be parsed or names what does not exist (with the field path)."""
