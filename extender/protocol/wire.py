"""Wire types of the kube-scheduler extender protocol (k8s.io/kube-scheduler/extender/v1).

The Go types carry no json tags, so the wire names are the Go field names. Only the parts of a Pod
and a Node that the extender reads are declared; everything else is skipped by the decoder. Node
items of a full NodeList are kept as raw bytes (`msgspec.Raw`) so that passing nodes go back to the
scheduler byte for byte, unchanged and without a re-encode.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Raw, Struct

from extender.bounds import MAX_NODES, MAX_VICTIMS, Name

Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
"""Go's int32 (pod priority): anything wider is not what the scheduler sends."""
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]

MAX_EXTENDER_PRIORITY = 10
"""`MaxExtenderPriority` of extender/v1: scores on the wire are integers in 0..10."""


class WireError(ValueError):
    """A request body that is not the protocol: answered with HTTP 400 and this message."""


# --- Kubernetes objects, as far as the extender reads them -------------------------------------


class OwnerReference(Struct, frozen=True):
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool | None = None


class ObjectMeta(Struct, frozen=True):
    name: Name = ""
    namespace: Name = ""
    uid: Name = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ownerReferences: list[OwnerReference] | None = None


class ResourceRequirements(Struct, frozen=True):
    requests: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None


class Container(Struct, frozen=True):
    resources: ResourceRequirements | None = None


class PodSpec(Struct, frozen=True):
    containers: list[Container] | None = None
    initContainers: list[Container] | None = None
    nodeName: str = ""
    schedulerName: str = ""
    priority: Int32 | None = None
    # Clusters whose API knows VM pods carry the request here (the original global scheduler's fork).
    virtualMachine: Any = None


class PodStatus(Struct, frozen=True):
    phase: str = ""


class Pod(Struct, frozen=True):
    metadata: ObjectMeta = ObjectMeta()
    spec: PodSpec = PodSpec()
    status: PodStatus = PodStatus()


class NodeMeta(Struct, frozen=True):
    name: Name = ""
    labels: dict[str, str] | None = None


class NodeHead(Struct, frozen=True):
    """The few fields of a Node the engine reads."""

    metadata: NodeMeta = NodeMeta()


class NodeList(Struct):
    """A v1.NodeList whose items stay raw bytes (decoded again, lightly, into `NodeHead`)."""

    metadata: Raw = msgspec.field(default_factory=lambda: Raw(b"{}"))
    items: Annotated[list[Raw], Meta(max_length=MAX_NODES)] | None = None


# --- Requests --------------------------------------------------------------------------------------


NodeNames = Annotated[list[Name], Meta(max_length=MAX_NODES)]


class ExtenderArgs(Struct):
    Pod: Pod
    Nodes: NodeList | None = None
    NodeNames: NodeNames | None = None


class _ExtenderArgsOnTheWire(Struct):
    """`ExtenderArgs` with the node names kept raw: counted before a list of them is built."""

    Pod: Pod
    Nodes: NodeList | None = None
    NodeNames: Raw = msgspec.field(default_factory=lambda: Raw(b"null"))


class ExtenderBindingArgs(Struct):
    PodName: Name
    PodNamespace: Name
    PodUID: Name
    Node: Name


class MetaPod(Struct):
    UID: Name


class MetaVictims(Struct):
    Pods: Annotated[list[MetaPod], Meta(max_length=MAX_VICTIMS)] | None = None
    NumPDBViolations: Int64 = 0


class Victims(Struct):
    Pods: Annotated[list[Pod], Meta(max_length=MAX_VICTIMS)] | None = None
    NumPDBViolations: Int64 = 0


class ExtenderPreemptionArgs(Struct):
    Pod: Pod
    NodeNameToVictims: Annotated[dict[Name, Victims], Meta(max_length=MAX_NODES)] | None = None
    NodeNameToMetaVictims: Annotated[dict[Name, MetaVictims], Meta(max_length=MAX_NODES)] | None = None


# --- Answers ---------------------------------------------------------------------------------------


class ExtenderFilterResult(Struct, omit_defaults=False):
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None
    FailedNodes: dict[str, str] = {}
    FailedAndUnresolvableNodes: dict[str, str] = {}
    Error: str = ""


class HostPriority(Struct, array_like=False):
    Host: str
    Score: int


class ExtenderBindingResult(Struct):
    Error: str = ""


class ExtenderPreemptionResult(Struct):
    NodeNameToMetaVictims: dict[str, MetaVictims] = {}


# --- Codec -----------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_args_decoder = msgspec.json.Decoder(_ExtenderArgsOnTheWire)
_names_decoder = msgspec.json.Decoder(NodeNames | None)
_bind_decoder = msgspec.json.Decoder(ExtenderBindingArgs)
_preempt_decoder = msgspec.json.Decoder(ExtenderPreemptionArgs)
_node_decoder = msgspec.json.Decoder(NodeHead)


def _decode(decoder: msgspec.json.Decoder, body: bytes, what: str) -> Any:
    if not body or not body.strip():
        raise WireError(f"empty body: expected a JSON object ({what})")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise WireError(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise WireError(f"body is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise WireError(invalid_utf8(exc)) from None
    except RecursionError:  # msgspec's depth guard: nesting no Kubernetes object has
        raise WireError(f"invalid {what}: JSON nested too deeply") from None


def invalid_utf8(exc: UnicodeDecodeError) -> str:
    """The message for a JSON string that is not UTF-8 (msgspec reports the offset inside the string)."""
    return f"body is not valid JSON: a string is not UTF-8 ({exc.reason}, byte 0x{exc.object[exc.start]:02x})"


def decode_extender_args(body: bytes) -> ExtenderArgs:
    """Decode an `ExtenderArgs` body, raising `WireError` with the field path on any mismatch."""
    wire = _decode(_args_decoder, body, "ExtenderArgs")
    # Kept raw to be echoed back unchanged: still it must be the ListMeta object the scheduler decodes.
    if wire.Nodes is not None and not bytes(wire.Nodes.metadata).lstrip().startswith(b"{"):
        raise WireError("invalid ExtenderArgs: Expected `object` - at `$.Nodes.metadata`")
    raw = wire.NodeNames
    # Node names hold no comma: more commas than names allowed means too many names, said before
    # millions of strings are made (the body's own count first: no copy in the common case).
    if body.count(b",") >= MAX_NODES and bytes(raw).count(b",") >= MAX_NODES:
        raise WireError(f"invalid ExtenderArgs: more than {MAX_NODES} node names - at `$.NodeNames`")
    try:
        names = _names_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        message = str(exc).replace(" - at `$", " - at `$.NodeNames", 1)
        raise WireError(f"invalid ExtenderArgs: {message if '- at' in message else message + ' - at `$.NodeNames`'}") from None
    except UnicodeDecodeError as exc:
        raise WireError(invalid_utf8(exc)) from None
    return ExtenderArgs(Pod=wire.Pod, Nodes=wire.Nodes, NodeNames=names)


def decode_binding_args(body: bytes) -> ExtenderBindingArgs:
    return _decode(_bind_decoder, body, "ExtenderBindingArgs")


def decode_preemption_args(body: bytes) -> ExtenderPreemptionArgs:
    return _decode(_preempt_decoder, body, "ExtenderPreemptionArgs")


def decode_node_heads(nodes: NodeList) -> list[NodeHead]:
    """Read name and labels of every raw node item; a bad item is a `WireError` naming its index."""
    heads: list[NodeHead] = []
    for index, raw in enumerate(nodes.items or ()):
        try:
            head = _node_decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            path = str(exc).replace("`$", f"`$.Nodes.items[{index}]", 1)
            raise WireError(f"invalid ExtenderArgs: {path}") from None
        if not head.metadata.name:
            raise WireError(
                f"invalid ExtenderArgs: node without a name - at `$.Nodes.items[{index}].metadata.name`"
            )
        heads.append(head)
    return heads


def encode(value: Any) -> bytes:
    return _encoder.encode(value)
