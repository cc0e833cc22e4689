"""deploy/tls/: the deployment with HTTPS and client certificates between kube-scheduler and the
extender, certificates from cert-manager. Rendered with kubectl kustomize, cross-checked, and served:
the extender container's env runs under gunicorn with certificates laid out as the Secret volumes."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.certs import CA, client_context
from tests.deploy_support import (
    no_cluster,
    DEPLOY,
    EXTENDER_CONTAINER,
    NAMESPACE,
    SCHEDULER_CONTAINER,
    container,
    env_of,
    find,
    mounts_of,
    one,
    render,
    validate_scheduler_configuration,
    volumes_of,
    write_configmap_volume,
)
from tests.server import REPO, serve

pytestmark = pytest.mark.process

TLS = DEPLOY / "tls"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(TLS)


@pytest.fixture(scope="module")
def base_objects() -> list[dict[str, Any]]:
    return render(DEPLOY)


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", "site-scheduler", NAMESPACE)["spec"]["template"]["spec"]


def scheduler_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec = pod_spec(objects)
    volume = mounts_of(container(spec, SCHEDULER_CONTAINER))["/etc/kubernetes/site-scheduler"]
    cm = one(objects, "ConfigMap", volumes_of(spec)[volume]["configMap"]["name"], NAMESPACE)
    return yaml.safe_load(cm["data"]["scheduler-config.yaml"])


def secret_mount(objects: list[dict[str, Any]], container_name: str, file: str) -> tuple[str, str]:
    """(Secret name, key) behind an absolute file path in a container."""
    spec = pod_spec(objects)
    for mount_path, volume in mounts_of(container(spec, container_name)).items():
        if file.startswith(mount_path.rstrip("/") + "/"):
            source = volumes_of(spec)[volume]
            assert "secret" in source, f"{file} is not on a Secret volume"
            return source["secret"]["secretName"], file[len(mount_path.rstrip("/")) + 1:]
    raise AssertionError(f"{file} is not mounted in {container_name}")


def certificate_for(objects: list[dict[str, Any]], secret: str) -> dict[str, Any]:
    (cert,) = [c for c in find(objects, "Certificate") if c["spec"]["secretName"] == secret]
    return cert


def test_kubernetes_objects_fit_the_api_schema(objects) -> None:
    for obj in objects:
        if not obj["apiVersion"].startswith("cert-manager.io/"):
            kubernetes_validate.validate(obj, "1.36.0", strict=True)


def test_scheduler_configuration_is_the_base_one_with_https_and_a_client_certificate(objects, base_objects) -> None:
    tls, base = scheduler_config(objects), scheduler_config(base_objects)
    assert validate_scheduler_configuration(tls) == []
    (extender,), (base_extender,) = tls["extenders"], base["extenders"]
    https = {k: extender.pop(k) for k in ("urlPrefix", "enableHTTPS", "tlsConfig")}
    base_extender.pop("urlPrefix")

    assert https["urlPrefix"] == "https://127.0.0.1:8888"
    assert https["enableHTTPS"] is True
    assert set(https["tlsConfig"]) == {"certFile", "keyFile", "caFile"}
    assert tls == base  # nothing else drifts from deploy/base/scheduler-config.yaml


def test_every_tls_file_is_a_key_of_a_secret_that_cert_manager_issues(objects) -> None:
    files = scheduler_config(objects)["extenders"][0]["tlsConfig"]
    client = {secret_mount(objects, SCHEDULER_CONTAINER, path) for path in files.values()}
    env = env_of(container(pod_spec(objects), EXTENDER_CONTAINER))
    serving = {secret_mount(objects, EXTENDER_CONTAINER, env[f"SITE_EXTENDER_TLS_{k}"]) for k in ("CERT", "KEY", "CLIENT_CA")}

    assert client == {("site-scheduler-extender-client", k) for k in ("tls.crt", "tls.key", "ca.crt")}
    assert serving == {("site-extender-serving", k) for k in ("tls.crt", "tls.key", "ca.crt")}
    server_cert = certificate_for(objects, "site-extender-serving")
    client_cert = certificate_for(objects, "site-scheduler-extender-client")
    assert "127.0.0.1" in server_cert["spec"]["ipAddresses"] and "server auth" in server_cert["spec"]["usages"]
    assert "client auth" in client_cert["spec"]["usages"] and "server auth" not in client_cert["spec"]["usages"]
    issuer = server_cert["spec"]["issuerRef"]["name"]
    assert client_cert["spec"]["issuerRef"]["name"] == issuer  # one CA: each side trusts the other's
    ca_secret = one(objects, "Issuer", issuer, NAMESPACE)["spec"]["ca"]["secretName"]
    assert certificate_for(objects, ca_secret)["spec"]["isCA"] is True


def test_secret_files_are_readable_by_both_containers_and_nobody_else(objects) -> None:
    spec = pod_spec(objects)
    for volume in ("extender-tls", "extender-client-tls"):
        assert volumes_of(spec)[volume]["secret"]["defaultMode"] == 0o440
    assert spec["securityContext"]["fsGroup"] == 10001
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_extender_probes_use_https(objects) -> None:
    c = container(pod_spec(objects), EXTENDER_CONTAINER)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"
        assert c[probe]["httpGet"]["path"] in ("/healthz", "/readyz")


def test_the_tls_deployment_env_serves_only_the_scheduler(objects, tmp_path: Path) -> None:
    """The extender container's env, its ConfigMaps and Secrets written as kubelet mounts them
    (certificates from a test CA), under gunicorn; the scheduler's tlsConfig files reach it."""
    spec = pod_spec(objects)
    c = container(spec, EXTENDER_CONTAINER)
    ca = CA(tmp_path / "ca", "site-extender-ca")
    serving = ca.issue("site-extender", server=True)
    scheduler = ca.issue("site-scheduler", server=False)
    secrets = {
        "site-extender-serving": {"tls.crt": serving.cert, "tls.key": serving.key, "ca.crt": ca.path},
        "site-scheduler-extender-client": {"tls.crt": scheduler.cert, "tls.key": scheduler.key, "ca.crt": ca.path},
    }
    moved: dict[str, str] = {}
    for path, volume in mounts_of(c).items():
        target = tmp_path / path.strip("/").replace("/", "_")
        moved[path] = str(target)
        source = volumes_of(spec)[volume]
        if "configMap" in source:
            write_configmap_volume(target, one(objects, "ConfigMap", source["configMap"]["name"], NAMESPACE)["data"])
        elif "secret" in source:
            files = secrets[source["secret"]["secretName"]]
            write_configmap_volume(target, {k: Path(v).read_text() for k, v in files.items()})
        else:
            target.mkdir(parents=True)

    def relocate(value: str) -> str:
        for path, target in moved.items():
            if value == path or value.startswith(path.rstrip("/") + "/"):
                return target + value[len(path.rstrip("/")):]
        return value

    env = {k: relocate(v) for k, v in env_of(c).items() if k.startswith("SITE_EXTENDER_")}
    env.update(SITE_EXTENDER_KUBE="none", SITE_EXTENDER_HOST="127.0.0.1")
    env.update(no_cluster())
    env.pop("SITE_EXTENDER_PORT")
    tls_config = scheduler_config(objects)["extenders"][0]["tlsConfig"]
    client_files = {k: secrets["site-scheduler-extender-client"][secret_mount(objects, SCHEDULER_CONTAINER, v)[1]]
                    for k, v in tls_config.items()}
    as_scheduler = client_context(ca, None)
    as_scheduler.load_cert_chain(str(client_files["certFile"]), str(client_files["keyFile"]))
    body = (REPO / "policy" / "samples" / "filter-cache.json").read_bytes()

    with serve(tmp_path, env=env, ssl_context=client_context(ca)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        for context, status in ((as_scheduler, 200), (client_context(ca), 403)):
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
            conn.request("POST", "/filter", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == status, response.read()
            if status == 200:
                assert json.loads(response.read())["NodeNames"] == ["site2", "site1"]
            conn.close()
        assert served.get("/readyz").status == 200  # the kubelet's probe: HTTPS, no client certificate
