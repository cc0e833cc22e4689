from __future__ import annotations

import pytest

from extender.domain.vmrequest import pod_group
from extender.protocol.wire import ObjectMeta, OwnerReference, Pod

RS = OwnerReference(kind="ReplicaSet", name="web-5d8f", uid="uid-rs", controller=True)
NOT_CONTROLLER = OwnerReference(kind="ConfigMap", name="cm", uid="uid-cm", controller=None)


@pytest.mark.parametrize(
    ("labels", "owners", "group"),
    [
        pytest.param(None, None, "", id="nothing"),
        pytest.param({"site-extender.io/group": "rtc"}, None, "rtc", id="label"),
        pytest.param(None, [NOT_CONTROLLER, RS], "uid-rs", id="controller-owner"),
        pytest.param(None, [NOT_CONTROLLER], "", id="owner-not-controller"),
        pytest.param({"site-extender.io/group": "rtc"}, [RS], "rtc", id="label-beats-owner"),
        pytest.param({"site-extender.io/group": ""}, [RS], "uid-rs", id="empty-label-ignored"),
    ],
)
def test_pod_group(labels, owners, group) -> None:
    pod = Pod(metadata=ObjectMeta(name="p", labels=labels, ownerReferences=owners))

    assert pod_group(pod) == group
