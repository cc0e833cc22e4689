"""The Dockerfile, read since no Docker engine runs here: pinned base, dependencies from pyproject.toml,
non-root user matching the Deployment, the gunicorn entrypoint with a config module that exists, the
port, the policy paths, and a HEALTHCHECK that really asks /healthz (run here against gunicorn)."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import tomllib

import pytest

from extender.config.settings import DEFAULT_PORT
from tests.deploy_support import (
    DEPLOY,
    EXTENDER_CONTAINER,
    REPO,
    container,
    dockerfile_instructions,
    dockerignore_excludes,
    env_of,
    one,
    render,
)
from tests.server import free_port

pytestmark = pytest.mark.process

INSTRUCTIONS = dockerfile_instructions((REPO / "Dockerfile").read_text())
IGNORE = (REPO / ".dockerignore").read_text().splitlines()


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, args in INSTRUCTIONS:
        if keyword == "FROM":
            out.append([])
        out[-1].append((keyword, args))
    return out


FINAL = stages()[-1]


def last(keyword: str, stage=FINAL) -> str:
    values = [args for k, args in stage if k == keyword]
    assert values, f"no {keyword} in the final stage"
    return values[-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in FINAL:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def extender_container() -> dict:
    dep = one(render(DEPLOY), "Deployment", "site-scheduler")
    return container(dep["spec"]["template"]["spec"], EXTENDER_CONTAINER)


def test_base_images_are_slim_python_pinned_by_version() -> None:
    bases = [args.split()[0] for keyword, args in INSTRUCTIONS if keyword == "FROM"]
    assert bases
    for base in bases:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(x) for x in requires.removeprefix(">=").split("."))
    version = tuple(int(x) for x in bases[-1].split(":")[1].split("-")[0].split(".")[:2])
    assert version >= minimum, f"{bases[-1]} is older than requires-python {requires}"


def test_dependencies_are_installed_from_pyproject() -> None:
    build = stages()[0]
    copied = " ".join(args for k, args in build if k == "COPY")
    assert "pyproject.toml" in copied and "README.md" in copied, "setuptools reads the readme named in pyproject"
    assert any(k == "RUN" and re.search(r"pip install (\S+ )*/src\b", args) for k, args in build)


def test_entrypoint_is_gunicorn_with_the_packages_config() -> None:
    entrypoint = json.loads(last("ENTRYPOINT"))
    assert entrypoint == ["gunicorn", "-c", "python:extender.ops.gunicorn_conf"]
    conf = importlib.import_module(entrypoint[2].removeprefix("python:"))
    module, _, factory = conf.wsgi_app.partition(":")
    assert callable(getattr(importlib.import_module(module), factory.removesuffix("()")))
    assert conf.control_socket_disable is True, "no control socket under a read-only root filesystem"
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("gunicorn") for d in deps)


def test_port_matches_the_app_and_the_deployment() -> None:
    env = image_env()
    assert last("EXPOSE") == str(DEFAULT_PORT) == env["SITE_EXTENDER_PORT"]
    ports = {p["name"]: p["containerPort"] for p in extender_container()["ports"]}
    assert ports["extender"] == DEFAULT_PORT


def test_user_is_numeric_non_root_and_the_deployments() -> None:
    user, _, group = last("USER").partition(":")
    assert user.isdigit() and int(user) > 0 and group.isdigit()
    sc = extender_container()["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (int(user), int(group))


def test_paths_match_the_deployment() -> None:
    env, deployed = image_env(), env_of(extender_container())
    for name in ("SITE_EXTENDER_POLICY", "SITE_EXTENDER_INVENTORY", "SITE_EXTENDER_DATA_DIR"):
        assert env[name] == deployed[name]
    user = last("USER").split(":")[0]
    assert any(k == "RUN" and f"install -d -o {user} " in args and env["SITE_EXTENDER_DATA_DIR"] in args
               for k, args in FINAL), "the data directory is the user's"
    destinations = [args.split()[-1].rstrip("/") for k, args in FINAL if k == "COPY" and "--from" not in args]
    assert env["SITE_EXTENDER_POLICY"] + "/policy.yaml" in destinations
    assert env["SITE_EXTENDER_INVENTORY"] in destinations


def test_copied_files_exist_and_are_in_the_build_context() -> None:
    for keyword, args in INSTRUCTIONS:
        if keyword != "COPY" or "--from" in args:
            continue
        for source in args.split()[:-1]:
            path = REPO / source
            assert path.exists(), source
            files = [path] if path.is_file() else [
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            for f in files:
                rel = f.relative_to(REPO).as_posix()
                assert not dockerignore_excludes(IGNORE, rel), f"{rel} is copied but .dockerignore leaves it out"


@pytest.mark.parametrize(("path", "excluded"), [
    (".venv/bin/python", True), ("tests/deploy/test_deploy.py", True), (".git/HEAD", True),
    ("extender/app.py", False), ("extender/__pycache__/app.cpython-311.pyc", True),
    ("policy/policy.yaml", False), ("policy/samples/filter-cache.json", True), ("README.md", False),
])
def test_dockerignore_keeps_the_context_small(path: str, excluded: bool) -> None:
    assert dockerignore_excludes(IGNORE, path) is excluded


def healthcheck() -> list[str]:
    args = last("HEALTHCHECK")
    command = json.loads(args[args.index("CMD") + 3:].strip())
    assert "curl" not in args and "wget" not in args, "the slim image has neither"
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_healthcheck_passes_against_the_running_extender(server) -> None:
    port = server.url.rsplit(":", 1)[1]
    result = subprocess.run(healthcheck(), env={"SITE_EXTENDER_PORT": port}, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()


def test_healthcheck_fails_when_nothing_answers() -> None:
    result = subprocess.run(healthcheck(), env={"SITE_EXTENDER_PORT": str(free_port())},
                            capture_output=True, timeout=30)
    assert result.returncode != 0
