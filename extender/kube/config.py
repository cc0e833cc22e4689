"""Which cluster to talk to: in-cluster service account, a kubeconfig, or none.

`SITE_EXTENDER_KUBE`: `auto` (default) picks in-cluster when `KUBERNETES_SERVICE_HOST` is set, else a
kubeconfig when `SITE_EXTENDER_KUBECONFIG` or `KUBECONFIG` names one, else none; `none`,
`in-cluster` and `kubeconfig` force a mode (a forced mode that cannot load is an error, never a
silent fall back to none).

The original service's `conf.yaml` (`CONFIG_BASE`) names its cluster with `kubeconfig` and `master`, as
client-go's `BuildConfigFromFlags(master, kubeconfig)` reads them: the kubeconfig file, with `master` in
place of its server when set (a bare `host:port` is https when the kubeconfig has TLS settings, else
http). In `auto` mode they win over the in-cluster account and `KUBECONFIG`; `SITE_EXTENDER_KUBE` and
`SITE_EXTENDER_KUBECONFIG` win over them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from extender.errors import KubeConfigError

AUTO, NONE, IN_CLUSTER, KUBECONFIG = "auto", "none", "in-cluster", "kubeconfig"
MODES = (AUTO, NONE, IN_CLUSTER, KUBECONFIG)
CONF_ORIGIN = "CONFIG_BASE conf.yaml"


@dataclass(frozen=True, slots=True)
class Target:
    """The cluster access chosen: `mode` is none, in-cluster or kubeconfig (with its path list; None
    with a `master` alone); `master` replaces the kubeconfig's server."""

    mode: str
    kubeconfig: str | None = None
    master: str | None = None
    origin: str = ""
    """Where the choice comes from when not the environment (CONFIG_BASE's conf.yaml)."""

    def describe(self) -> str:
        if self.mode != KUBECONFIG:
            return self.mode
        parts = [f"kubeconfig {self.kubeconfig}"] if self.kubeconfig else []
        parts += [f"master {self.master}"] if self.master else []
        return " ".join(parts + ([f"(from {self.origin})"] if self.origin else []))


def choose(mode: str, environ: Mapping[str, str], conf_kubeconfig: str | None = None,
           conf_master: str | None = None) -> Target:
    """Pure: the target for `mode` given the environment (`KUBERNETES_SERVICE_HOST`,
    `SITE_EXTENDER_KUBECONFIG`, `KUBECONFIG`) and conf.yaml's `kubeconfig` and `master`."""
    mode = (mode or AUTO).strip().lower()
    if mode not in MODES:
        raise KubeConfigError(f"SITE_EXTENDER_KUBE={mode!r}: expected one of {', '.join(MODES)}")
    ours = environ.get("SITE_EXTENDER_KUBECONFIG") or None
    path = ours or environ.get("KUBECONFIG") or None
    if mode == AUTO:
        if conf_kubeconfig or conf_master:
            return Target(KUBECONFIG, ours or conf_kubeconfig, conf_master, CONF_ORIGIN)
        if environ.get("KUBERNETES_SERVICE_HOST"):
            return Target(IN_CLUSTER)
        return Target(KUBECONFIG, path) if path else Target(NONE)
    if mode == KUBECONFIG:
        origin = CONF_ORIGIN if conf_master or (conf_kubeconfig and not ours) else ""
        return Target(KUBECONFIG, ours or conf_kubeconfig or path or "~/.kube/config", conf_master, origin)
    return Target(mode)


def api_client(target: Target) -> client.ApiClient:
    """An `ApiClient` for the target, with its own configuration (the client's global one untouched)."""
    configuration = client.Configuration()
    try:
        if target.mode == IN_CLUSTER:
            config.load_incluster_config(client_configuration=configuration)
        elif target.mode == KUBECONFIG:
            if target.kubeconfig:
                paths = [os.path.expanduser(p) for p in target.kubeconfig.split(os.pathsep) if p]
                if not any(os.path.isfile(p) for p in paths):
                    raise KubeConfigError(f"cannot load cluster access ({target.describe()}): no such file")
                config.load_kube_config(config_file=target.kubeconfig, client_configuration=configuration)
            if target.master:
                _replace_server(configuration, server_url(target.master, configuration))
        else:
            raise KubeConfigError(f"no cluster access for mode {target.mode!r}")
    except ConfigException as exc:
        raise KubeConfigError(f"cannot load cluster access ({target.describe()}): {exc}") from exc
    return client.ApiClient(configuration)


def _replace_server(configuration: client.Configuration, host: str) -> None:
    """Point `configuration` at `host`, and keep it there: the kubeconfig loader's token refresh hook,
    called before every request, copies the kubeconfig's server back and installs itself again."""
    configuration.host = host
    refresh = configuration.refresh_api_key_hook
    if refresh is None:
        return

    def refresh_keeping_host(c: client.Configuration) -> None:
        nonlocal refresh
        refresh(c)
        if c.refresh_api_key_hook is not refresh_keeping_host:
            refresh = c.refresh_api_key_hook or refresh
        c.refresh_api_key_hook = refresh_keeping_host
        c.host = host

    configuration.refresh_api_key_hook = refresh_keeping_host


def server_url(master: str, configuration: client.Configuration) -> str:
    """`master` as a URL: as given with a scheme; else https when the configuration has TLS settings
    (a CA, a client certificate, or verification turned off), http otherwise (client-go's rule)."""
    if "://" in master:
        return master.rstrip("/")
    tls = bool(configuration.ssl_ca_cert or configuration.cert_file or not configuration.verify_ssl)
    return f"{'https' if tls else 'http'}://{master.rstrip('/')}"
