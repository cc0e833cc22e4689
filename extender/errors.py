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


class PlacementsUnavailable(ExtenderError):
    """A placement source cannot say what is placed (an allocation store that cannot be read): every
    decision that counts stock fails closed with this reason, rather than count nothing."""


class VMRequestError(ExtenderError):
    """A pod's VM request that cannot be parsed or names what does not exist (with the field path)."""


class ClusterError(ExtenderError):
    """Talking to the Kubernetes API failed, or the cluster access is misconfigured."""


class KubeConfigError(ClusterError):
    """No usable cluster credentials for the mode asked (`SITE_EXTENDER_KUBE`)."""


class ApiError(ClusterError):
    """The API server answered with an error status (0: no answer at all), its message kept."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}" if status else message)


class NotFoundError(ApiError):
    """404: the object does not exist (any more)."""


class ConflictError(ApiError):
    """409: already exists, already bound, or a precondition (uid) failed."""


class GoneError(ApiError):
    """410: the resourceVersion to watch from is too old; list again."""
