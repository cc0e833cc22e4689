"""Find the Kubernetes API calls a Python package makes, as RBAC (apiGroup, resource, verb).

The methods are those of the official client's `*Api` classes; each one's HTTP method and path are read
from the client's own generated code, so the table below is the client itself, never a hand-kept list
that could drift:
  POST /api/v1/namespaces/{namespace}/pods/{name}/binding  ->  ("", "pods/binding", "create")
A list method used for a watch (`watch.Watch().stream(api.list_node)`, `watch=True`, or any list
method of a module that streams watches) also needs "watch".

`CustomObjectsApi` methods take the group and the resource as arguments: the group is the project's
(`extender.kube.resources.GROUP`), the resource the plural named at the call (a string, or a constant of
`extender.kube.resources`), else, when the call does not say, every custom resource of deploy/crds.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import kubernetes.client

_PATH = re.compile(r"""['"](/apis?/[^'"]+)['"]""")
_METHOD = re.compile(r"""['"](GET|POST|PUT|PATCH|DELETE)['"]""")


@dataclass(frozen=True, order=True)
class Permission:
    group: str
    resource: str  # with its subresource: "pods/binding"
    verb: str
    namespaced: bool

    def __str__(self) -> str:
        return f"{self.verb} {self.group or 'core'}/{self.resource}"


@dataclass(frozen=True, order=True)
class Call:
    api: str  # the client class: "CoreV1Api"
    method: str
    file: str
    line: int
    watched: bool
    plural: str | None = None
    """For CustomObjectsApi: the resource named at the call, when it names one."""

    def __str__(self) -> str:
        return f"{self.api}.{self.method} ({self.file}:{self.line})"


@cache
def api_classes() -> dict[str, type]:
    classes = {name: getattr(kubernetes.client, name) for name in dir(kubernetes.client) if name.endswith("Api")}
    return {name: cls for name, cls in classes.items() if isinstance(cls, type) and name != "ApiClient"}


@cache
def methods_by_name() -> dict[str, tuple[str, ...]]:
    """Public API method name -> the classes that define it."""
    table: dict[str, list[str]] = {}
    for class_name, cls in api_classes().items():
        for name, member in vars(cls).items():
            if name.startswith("_") or not callable(member) or name.endswith("_with_http_info"):
                continue
            if name.endswith("_without_preload_content"):
                continue
            table.setdefault(name, []).append(class_name)
    return {name: tuple(sorted(classes)) for name, classes in table.items()}


@cache
def endpoint(api: str, method: str) -> tuple[str, str]:
    """(HTTP method, path) of `api.method`, read from the client's generated code."""
    cls = api_classes()[api]
    sources = []
    for name in (f"_{method}_serialize", f"{method}_with_http_info", method):
        member = getattr(cls, name, None)
        if member is not None:
            sources.append(inspect.getsource(member))
    text = "\n".join(sources)
    path, http = _PATH.search(text), _METHOD.search(text)
    if not path or not http:
        raise LookupError(f"cannot read the endpoint of {api}.{method} from the client")
    return http.group(1), path.group(1)


@cache
def custom_resources() -> dict[str, bool]:
    """The plurals of the project's CustomResourceDefinitions in deploy/crds, each with whether it is
    namespaced."""
    import yaml

    crds = Path(__file__).resolve().parent.parent / "deploy" / "crds"
    found = {}
    for file in sorted(crds.glob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                found[doc["spec"]["names"]["plural"]] = doc["spec"]["scope"] == "Namespaced"
    return found


def permission(api: str, method: str, watched: bool = False, plural: str | None = None) -> Permission:
    http, path = endpoint(api, method)
    if "{plural}" in path:
        from extender.kube.resources import GROUP

        path = path.replace("{group}", GROUP).replace("{plural}", plural or "{plural}")
    parts = [p for p in path.split("/") if p]
    if parts[0] == "api":  # /api/v1/...
        group, rest = "", parts[2:]
    else:  # /apis/{group}/{version}/...
        group, rest = parts[1], parts[3:]
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespaced = len(rest) >= 3 and rest[0] == "namespaces" and rest[1] == "{namespace}"
    if namespaced:
        rest = rest[2:]
    resource = rest[0]
    named = len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if watch or (watched and http == "GET" and not named):
        verb = "watch"
    else:
        verb = {
            "GET": "get" if named else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if named else "deletecollection",
        }[http]
    return Permission(group, resource, verb, namespaced)


def calls_in_source(source: str, file: str) -> list[Call]:
    """Every reference to a client API method in `source` (called, passed to a watch, or named in a
    string for getattr), resolved to its class by the `*Api` classes the source names."""
    tree = ast.parse(source, file)
    known = methods_by_name()
    named_classes = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in api_classes()}
    named_classes |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in api_classes()}
    streams = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _called_name(n) == "stream"]
    module_watches = bool(streams) or any(
        isinstance(n, ast.keyword) and n.arg == "watch" for n in ast.walk(tree))
    streamed = {id(arg) for call in streams for arg in call.args}
    plurals = {id(n.func): _plural(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
               and isinstance(n.func, ast.Attribute) and n.func.attr in known}

    found: list[Call] = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in known:
            name = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            name = node.value
        if name is None:
            continue
        candidates = known[name]
        classes = [c for c in candidates if c in named_classes] or list(candidates)
        watched = id(node) in streamed or (module_watches and name.startswith("list_"))
        plural = plurals.get(id(node)) if "CustomObjectsApi" in classes else None
        found.extend(Call(c, name, file, node.lineno, watched, plural if c == "CustomObjectsApi" else None)
                     for c in classes)
    return sorted(set(found))


RAW_ACCESS = ("call_api", "param_serialize", "DynamicClient", "RESTClientObject")
"""Ways around the typed methods: their endpoints cannot be read here, so they must be mapped by hand."""


def raw_access_in_package(root: Path) -> list[str]:
    """`file:line name` of every use of RAW_ACCESS in the package."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in RAW_ACCESS:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno} {name}")
    return found


def _plural(call: ast.Call) -> str | None:
    """The custom resource a call names: a string argument, or a constant of extender.kube.resources,
    that is the plural of one of deploy/crds."""
    from extender.kube import resources

    for arg in [*call.args, *(k.value for k in call.keywords)]:
        value = arg.value if isinstance(arg, ast.Constant) else getattr(resources, arg.id, None) \
            if isinstance(arg, ast.Name) else None
        if isinstance(value, str) and value in custom_resources():
            return value
    return None


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def calls_in_package(root: Path, exclude: Iterable[str] = ()) -> list[Call]:
    """Every call in the package's modules, but those under the subpackages `exclude` names."""
    calls: list[Call] = []
    skipped = [root / name for name in exclude]
    for path in sorted(root.rglob("*.py")):
        if any(path.is_relative_to(s) for s in skipped):
            continue
        calls.extend(calls_in_source(path.read_text(encoding="utf-8"), str(path.relative_to(root.parent))))
    return calls


def required(calls: Iterable[Call]) -> dict[Permission, list[Call]]:
    """Permission -> the calls that need it. A watched list needs list and watch."""
    needs: dict[Permission, list[Call]] = {}
    for call in calls:
        plurals: list[str | None] = [None]
        if "{plural}" in endpoint(call.api, call.method)[1]:
            plurals = [call.plural] if call.plural else list(custom_resources())
        perms = {permission(call.api, call.method, plural=p) for p in plurals}
        if call.watched:
            perms |= {permission(call.api, call.method, watched=True, plural=p) for p in plurals}
        for perm in perms:
            needs.setdefault(perm, []).append(call)
    return needs


def granted(rules: Iterable[dict], perm: Permission) -> bool:
    """Whether one of the RBAC `rules` allows `perm` on any object (rules limited to resourceNames
    do not: the code's calls are not limited to one object name)."""
    for rule in rules:
        if rule.get("resourceNames"):
            continue
        if not _has(rule.get("apiGroups", []), perm.group):
            continue
        if not _has(rule.get("resources", []), perm.resource):
            continue
        if _has(rule.get("verbs", []), perm.verb):
            return True
    return False


def _has(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values
