"""Which cluster to talk to: in-cluster service account, a kubeconfig, or none.

`SITE_EXTENDER_KUBE`: `auto` (default) picks in-cluster when `KUBERNETES_SERVICE_HOST` is set, else a
kubeconfig when `SITE_EXTENDER_KUBECONFIG` or `KUBECONFIG` names one, else none; `none`,
`in-cluster` and `kubeconfig` force a mode (a forced mode that cannot load is an error, never a
silent fall back to none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from extender.errors import KubeConfigError

AUTO, NONE, IN_CLUSTER, KUBECONFIG = "auto", "none", "in-cluster", "kubeconfig"
MODES = (AUTO, NONE, IN_CLUSTER, KUBECONFIG)


@dataclass(frozen=True, slots=True)
class Target:
    """The cluster access chosen: `mode` is none, in-cluster or kubeconfig (with its path list)."""

    mode: str
    kubeconfig: str | None = None

    def describe(self) -> str:
        return f"kubeconfig {self.kubeconfig}" if self.mode == KUBECONFIG else self.mode


def choose(mode: str, environ: Mapping[str, str]) -> Target:
    """Pure: the target for `mode` given the environment (`KUBERNETES_SERVICE_HOST`,
    `SITE_EXTENDER_KUBECONFIG`, `KUBECONFIG`)."""
    mode = (mode or AUTO).strip().lower()
    if mode not in MODES:
        raise KubeConfigError(f"SITE_EXTENDER_KUBE={mode!r}: expected one of {', '.join(MODES)}")
    path = environ.get("SITE_EXTENDER_KUBECONFIG") or environ.get("KUBECONFIG") or None
    if mode == AUTO:
        if environ.get("KUBERNETES_SERVICE_HOST"):
            return Target(IN_CLUSTER)
        return Target(KUBECONFIG, path) if path else Target(NONE)
    if mode == KUBECONFIG:
        return Target(KUBECONFIG, path or "~/.kube/config")
    return Target(mode)


def api_client(target: Target) -> client.ApiClient:
    """An `ApiClient` for the target, with its own configuration (the client's global one untouched)."""
    configuration = client.Configuration()
    try:
        if target.mode == IN_CLUSTER:
            config.load_incluster_config(client_configuration=configuration)
        elif target.mode == KUBECONFIG:
            config.load_kube_config(config_file=target.kubeconfig, client_configuration=configuration)
        else:
            raise KubeConfigError(f"no cluster access for mode {target.mode!r}")
    except ConfigException as exc:
        raise KubeConfigError(f"cannot load cluster access ({target.describe()}): {exc}") from exc
    return client.ApiClient(configuration)
