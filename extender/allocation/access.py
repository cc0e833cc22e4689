"""Who may use the allocation API in a cluster, and on which port it answers.

Authentication and authorization are the cluster's, as aggregated API servers and admission webhooks
do it: the caller sends a bearer token (a ServiceAccount's, e.g. from `kubectl create token`); a
TokenReview tells who it is, and a SubjectAccessReview whether that user may do the request's verb
on `allocations.site-extender.io` in the extender's namespace (POST and PUT: create, GET: get or list,
DELETE: delete). RBAC Roles on that resource therefore decide, as for `kubectl get allocations`.
Answers are cached for `TTL_S` seconds (a revoked token or a removed RoleBinding takes effect within
that time), so a busy client costs the API server two reviews per token and verb every `TTL_S`.
No token: 401; a token the API server does not accept: 401; not allowed: 403 naming the verb and
resource; the reviews cannot be made: 503 (never let through).

With `SITE_EXTENDER_API_PORT` the allocation API answers on that port only, and that port answers the
allocation API only (and the probes): the Service and NetworkPolicy of deploy/ open that port alone,
and the extender verbs (/filter, /bind, ...) stay on the loopback-only port kube-scheduler calls.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from flask import Flask, Response, jsonify, request
from kubernetes.client import (
    AuthenticationV1Api,
    AuthorizationV1Api,
    V1ResourceAttributes,
    V1SubjectAccessReview,
    V1SubjectAccessReviewSpec,
    V1TokenReview,
    V1TokenReviewSpec,
)

from extender.errors import ClusterError
from extender.kube.api import api_errors
from extender.kube.resources import ALLOCATIONS, GROUP, object_name

log = logging.getLogger(__name__)

PREFIX = "/v1/allocations"
PROBES = ("/healthz", "/readyz")
TTL_S = 10.0
MAX_CACHED = 10_000
TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class User:
    name: str
    uid: str
    groups: tuple[str, ...]
    extra: tuple[tuple[str, tuple[str, ...]], ...]


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class ClusterAccess:
    """TokenReview + SubjectAccessReview on the allocations resource, cached for `ttl` seconds."""

    def __init__(self, authentication: AuthenticationV1Api, authorization: AuthorizationV1Api, namespace: str,
                 ttl: float = TTL_S) -> None:
        self.authentication = authentication
        self.authorization = authorization
        self.namespace = namespace
        self.ttl = ttl
        self._lock = threading.Lock()
        self._users: dict[str, tuple[float, User | None]] = {}
        self._allowed: dict[tuple[User, str, str], tuple[float, bool, str]] = {}

    def check(self, authorization: str | None, verb: str, name: str = "") -> User:
        """The user behind the `Authorization` header, allowed `verb` (on the allocation `name`);
        raises `Denied` with the status to answer."""
        if not authorization or not authorization.startswith("Bearer ") or not authorization[7:].strip():
            raise Denied(401, "the allocation API needs a bearer token (Authorization: Bearer TOKEN), e.g. a "
                              "ServiceAccount's from kubectl create token")
        user = self._user(authorization[7:].strip())
        if user is None:
            raise Denied(401, "the bearer token is not accepted by the cluster (TokenReview)")
        allowed, reason = self._may(user, verb, name)
        if not allowed:
            raise Denied(403, f"{user.name} may not {verb} {ALLOCATIONS}.{GROUP} in namespace {self.namespace}"
                              + (f": {reason}" if reason else ""))
        return user

    def _user(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._users.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        review = V1TokenReview(spec=V1TokenReviewSpec(token=token))
        with _unavailable("review the token"):
            status = self.authentication.create_token_review(review, _request_timeout=TIMEOUT_S).status
        user = None
        if status is not None and status.authenticated and status.user is not None:
            user = User(name=status.user.username or "", uid=status.user.uid or "",
                        groups=tuple(status.user.groups or ()),
                        extra=tuple(sorted((k, tuple(v)) for k, v in (status.user.extra or {}).items())))
        self._remember(self._users, key, (now + self.ttl, user))
        return user

    def _may(self, user: User, verb: str, name: str) -> tuple[bool, str]:
        key = (user, verb, name)
        now = time.monotonic()
        cached = self._allowed.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        review = V1SubjectAccessReview(spec=V1SubjectAccessReviewSpec(
            user=user.name, uid=user.uid or None, groups=list(user.groups) or None,
            extra={k: list(v) for k, v in user.extra} or None,
            resource_attributes=V1ResourceAttributes(group=GROUP, resource=ALLOCATIONS, verb=verb,
                                                     namespace=self.namespace,
                                                     name=object_name(name) if name else None)))
        with _unavailable("review the access"):
            status = self.authorization.create_subject_access_review(review, _request_timeout=TIMEOUT_S).status
        allowed, reason = bool(status and status.allowed), (status.reason or "") if status else ""
        self._remember(self._allowed, key, (now + self.ttl, allowed, reason))
        return allowed, reason

    def _remember(self, cache: dict, key: object, value: object) -> None:
        with self._lock:
            if len(cache) >= MAX_CACHED:
                cache.clear()
            cache[key] = value


class _unavailable:
    """API errors while reviewing become a 503: the request is refused, never let through."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._errors = api_errors()

    def __enter__(self) -> None:
        self._errors.__enter__()

    def __exit__(self, kind, exc, tb) -> bool:
        try:
            self._errors.__exit__(kind, exc, tb)
        except ClusterError as error:
            raise Denied(503, f"cannot {self.what} with the cluster: {error}") from error
        return False


def _verb() -> tuple[str, str]:
    """(RBAC verb, allocation id) of the request."""
    rest = request.path[len(PREFIX):].strip("/")
    if request.method in ("POST", "PUT"):
        return "create", rest
    if request.method == "DELETE":
        return "delete", rest
    return ("get", rest) if rest else ("list", "")


def init_app(app: Flask, access: ClusterAccess | None, api_port: int | None) -> None:
    """Keep the allocation API on its port, and behind `access` when given."""

    @app.before_request
    def guard() -> tuple[Response, int] | None:
        path = request.path
        on_api = path == PREFIX or path.startswith(PREFIX + "/")
        if api_port is not None and path not in PROBES:
            arrived = request.environ.get("SERVER_PORT", "")
            if on_api and arrived != str(api_port):
                return jsonify(error=f"the allocation API is served on port {api_port}"), 404
            if not on_api and arrived == str(api_port):
                return jsonify(error=f"port {api_port} serves the allocation API ({PREFIX}) only"), 404
        if on_api and access is not None:
            verb, name = _verb()
            try:
                access.check(request.headers.get("Authorization"), verb, name)
            except Denied as denied:
                if denied.status == 503:
                    log.error("allocation API: %s", denied)
                return jsonify(error=str(denied)), denied.status
        return None
