"""The original global scheduler's configuration: `CONFIG_BASE` names a directory holding its
`conf.yaml` (`address`, `port`, `scheduler_policy_file`, ...) and its data files (the inventory).

`scheduler_policy_file` is often an absolute path of the machine the directory came from: when it
does not exist, the file of the same name inside `CONFIG_BASE` is used, and a log line says so.
`master` and `kubeconfig` name the cluster as the original's `clientcmd.BuildConfigFromFlags` read them:
the kubeconfig file, with `master` (when set) in place of its server (see `extender.kube.config`).
Keys this service has no use for (`scheduler_policy`, `spot_region_mapping`, the informer intervals) are
ignored. `SITE_EXTENDER_*` variables, when set, win over what `conf.yaml` says.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec
import yaml
from msgspec import Struct

from extender.errors import ConfigError

log = logging.getLogger(__name__)

ENV_CONFIG_BASE = "CONFIG_BASE"
CONF_FILE = "conf.yaml"


class _Conf(Struct):
    address: str = ""
    port: int | None = None
    scheduler_policy_file: str = ""
    master: str = ""
    kubeconfig: str = ""


@dataclass(frozen=True, slots=True)
class LegacyConf:
    base: Path
    address: str | None
    port: int | None
    policy: Path
    """The policy file, or `base` itself (its edgecloud_policy.yaml) when conf.yaml names none."""
    master: str | None = None
    """The API server's address, in place of the kubeconfig's server."""
    kubeconfig: str | None = None

    @property
    def inventory(self) -> Path:
        return self.base


def config_base() -> Path | None:
    value = os.environ.get(ENV_CONFIG_BASE)
    return Path(value) if value else None


def load_conf(base: str | Path) -> LegacyConf:
    """Read `<base>/conf.yaml`; raise `ConfigError` naming the file and field of every problem."""
    base = Path(base)
    file = base / CONF_FILE
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{file}: not found ({ENV_CONFIG_BASE}={base} must hold the original conf.yaml)"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{file}: cannot be read: {exc}"]) from None
    try:
        conf = msgspec.convert(data or {}, _Conf, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError([f"{file}: {exc}"]) from None
    if conf.port is not None and not 0 < conf.port < 65536:
        raise ConfigError([f"{file}: port must be in 1..65535, got {conf.port} - at `$.port`"])

    policy = base
    if conf.scheduler_policy_file:
        named = Path(conf.scheduler_policy_file)
        if not named.is_absolute():
            named = base / named
        if named.is_file():
            policy = named
        elif (base / named.name).is_file():
            policy = base / named.name
            log.warning("%s: scheduler_policy_file %s does not exist here; using %s (same name, in %s)",
                        file, conf.scheduler_policy_file, policy, ENV_CONFIG_BASE)
        else:
            raise ConfigError([f"{file}: scheduler_policy_file {conf.scheduler_policy_file} not found,"
                               f" nor {named.name} in {base} - at `$.scheduler_policy_file`"])
    return LegacyConf(base=base, address=conf.address or None, port=conf.port, policy=policy,
                      master=conf.master or None, kubeconfig=conf.kubeconfig or None)
