"""A real control plane for tests: etcd, kube-apiserver and (on demand) kube-scheduler on loopback.

What controller-runtime's envtest gives Go projects: the upstream binaries, started once per test
session, RBAC on, an admin token for the tests and `token_for` for least-privilege callers. The
binaries come from `SITE_EXTENDER_K8S_BIN` (a directory holding `etcd`, `kube-apiserver`,
`kube-scheduler`), else from `../shared/k8s/unpack`; without either the tests that need them skip and
say so. No controller-manager runs: namespaces get no `default` ServiceAccount, Deployments make no
pods and nodes get no heartbeat unless a test (or the extender) gives them one.
"""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.server import REPO, free_port

BINARIES = ("etcd", "kube-apiserver", "kube-scheduler")
UNPACK = REPO.parent / "shared" / "k8s" / "unpack"
READY_TIMEOUT = 90.0


def find_binaries() -> tuple[Path | None, str]:
    """The directory of the control-plane binaries, or None and why not."""
    configured = os.environ.get("SITE_EXTENDER_K8S_BIN")
    if configured:
        directory = Path(configured)
        missing = [b for b in BINARIES if not (directory / b).is_file()]
        if missing:
            return None, f"SITE_EXTENDER_K8S_BIN={configured} lacks {', '.join(missing)}"
        return directory, ""
    if not UNPACK.is_file():
        return None, (f"no control-plane binaries: set SITE_EXTENDER_K8S_BIN, or put ../shared/k8s "
                      f"beside the repo ({UNPACK} is missing)")
    result = subprocess.run([str(UNPACK)], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        return None, f"{UNPACK} failed: {result.stderr.strip()[-500:]}"
    return Path(result.stdout.strip().splitlines()[-1]), ""


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver. `kubeconfig` is the admin's (system:masters)."""

    binaries: Path
    workdir: Path
    url: str
    kubeconfig: Path
    admin_token: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _crds_installed: bool = False

    def api_client(self, kubeconfig: Path | None = None):
        """An official-client ApiClient for `kubeconfig` (default: the admin's)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(kubeconfig or self.kubeconfig))

    def kubeconfig_for_token(self, token: str, name: str) -> Path:
        path = self.workdir / f"kubeconfig-{name}"
        path.write_text(yaml.safe_dump(_kubeconfig(self.url, self.workdir / "certs" / "apiserver.crt", token, name)))
        return path

    def token_for(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A bound ServiceAccount token, as `kubectl create token SA -n NS` makes it."""
        from kubernetes import client

        with self.api_client() as api:
            request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
                audiences=[], expiration_seconds=seconds))
            answer = client.CoreV1Api(api).create_namespaced_service_account_token(
                service_account, namespace, request)
        return answer.status.token

    @contextmanager
    def scheduler(self, config: dict, name: str = "kube-scheduler",
                  extra_args: Sequence[str] = ()) -> Iterator[subprocess.Popen[bytes]]:
        """kube-scheduler with `config` (a KubeSchedulerConfiguration; its kubeconfig is set here)."""
        config = {**config, "clientConnection": {**config.get("clientConnection", {}),
                                                 "kubeconfig": str(self.kubeconfig)}}
        path = self.workdir / f"{name}-config.yaml"
        path.write_text(yaml.safe_dump(config))
        with (self.workdir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(self.binaries / "kube-scheduler"), f"--config={path}", "--secure-port=0", *extra_args],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            _stop(process, grace=5)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl (from PATH) against this control plane, as a user would."""
        import shutil

        path = shutil.which("kubectl")
        if path is None:
            import pytest

            pytest.skip("kubectl is not installed")
        result = subprocess.run([path, f"--kubeconfig={kubeconfig or self.kubeconfig}", *args], capture_output=True,
                                text=True, timeout=60, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def apply(self, *paths: Path) -> None:
        """Server-side apply of manifest files, as an admin would (idempotent: tests share the plane)."""
        for path in paths:
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))

    def install_crds(self) -> None:
        """deploy/crds applied (server-side, as `kubectl apply -k`), and established. Idempotent."""
        if self._crds_installed:
            return
        self.kubectl("apply", "--server-side", "-k", str(REPO / "deploy" / "crds"))
        names = [f"crd/{doc['metadata']['name']}" for file in sorted((REPO / "deploy" / "crds").glob("*.yaml"))
                 for doc in yaml.safe_load_all(file.read_text()) if doc and doc.get("kind") == "CustomResourceDefinition"]
        self.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
        self._crds_installed = True

    def apply_extender_access(self) -> None:
        """deploy/'s namespace, the extender's ServiceAccount and its RBAC. Idempotent."""
        self.apply(*(REPO / "deploy" / "base" / name for name in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml")))

    def import_inventory(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`site-extender import ARGS...` with the admin's kubeconfig, as an operator runs it."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "SITE_EXTENDER_KUBE": "kubeconfig"}
        return subprocess.run([sys.executable, "-m", "extender.cli", "import", *args], capture_output=True,
                              text=True, env=env, timeout=120, cwd=REPO)


def _kubeconfig(url: str, ca: Path, token: str, user: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": url, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
    }


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _wait_ready(url: str, ca: Path, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if not ca.is_file():
            time.sleep(0.3)
            continue
        context = ssl.create_default_context(cafile=str(ca))
        request = urllib.request.Request(url + "/readyz", headers={"Authorization": f"Bearer {token}"})
        with suppress(OSError):
            with urllib.request.urlopen(request, context=context, timeout=2) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.3)
    raise RuntimeError(f"kube-apiserver not ready after {READY_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def control_plane(binaries: Path, workdir: Path) -> Iterator[ControlPlane]:
    """Start etcd and kube-apiserver in `workdir`; stop both (apiserver first) on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        client_port, peer_port = free_port(), free_port()
        with (workdir / "etcd.log").open("wb") as etcd_log:
            processes.append(subprocess.Popen([
                str(binaries / "etcd"), "--name", "t", "--data-dir", str(workdir / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{client_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                "--initial-cluster", f"t=http://127.0.0.1:{peer_port}",
                "--log-level", "warn", "--quota-backend-bytes", str(2 << 30),
            ], stdout=etcd_log, stderr=subprocess.STDOUT))

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = workdir / "sa.key"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        pub_file = workdir / "sa.pub"
        pub_file.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))
        token = secrets.token_hex(16)
        tokens = workdir / "tokens.csv"
        tokens.write_text(f'{token},admin,admin,"system:masters"\n')
        cert_dir = workdir / "certs"
        cert_dir.mkdir()
        port = free_port()
        api_log_path = workdir / "kube-apiserver.log"
        with api_log_path.open("wb") as api_log:
            apiserver = subprocess.Popen([
                str(binaries / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{client_port}",
                f"--secure-port={port}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--cert-dir={cert_dir}",
                f"--service-account-key-file={pub_file}", f"--service-account-signing-key-file={key_file}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/24",
                f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",
                "--disable-admission-plugins=ServiceAccount",
                "--v=1",
            ], stdout=api_log, stderr=subprocess.STDOUT)
        processes.append(apiserver)
        ca = cert_dir / "apiserver.crt"
        url = f"https://127.0.0.1:{port}"
        _wait_ready(url, ca, token, apiserver, api_log_path)
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(url, ca, token, "admin")))
        plane = ControlPlane(binaries=binaries, workdir=workdir, url=url, kubeconfig=kubeconfig,
                             admin_token=token, processes=processes)
        yield plane
    finally:
        for process in reversed(processes):
            _stop(process, grace=3 if process is not processes[0] else 10)
