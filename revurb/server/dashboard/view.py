"""What a login may see of the figures: every app's, or one app's and nothing of the others'.

An app's login gets its own app's figures from every node, the nodes' names and bus state, and no
node-wide total (those sum every app's traffic).
"""

from __future__ import annotations

from typing import Any, TypedDict

from revurb.server.dashboard.figures import APP_FIELDS, NODE_FIELDS, NodeFigures, Sample
from revurb.server.dashboard.session import Session

#: Node figures an app's login may see: the bus's lag and queue say nothing of other apps.
_APP_SCOPE_NODE_FIELDS = frozenset({"bus_lag", "bus_queued"})


class NodeView(TypedDict):
    id: str
    name: str
    own: bool
    bus: dict[str, Any]
    samples: list[Sample]


def scoped(sample: Sample, session: Session) -> Sample:
    if session.every_app:
        return sample
    figures = sample["apps"].get(session.scope)
    node = [
        value if name in _APP_SCOPE_NODE_FIELDS else 0.0
        for name, value in zip(NODE_FIELDS, sample["node"], strict=True)
    ]
    return {"t": sample["t"], "node": node, "apps": {session.scope: figures} if figures is not None else {}}


def node_view(node: NodeFigures, own: bool, session: Session, history: bool) -> NodeView:
    """A node with its whole ring (`history`) or its newest sample."""
    newest = [node.samples[-1]] if node.samples else []
    samples = list(node.samples) if history else newest
    return {
        "id": node.id,
        "name": node.name,
        "own": own,
        "bus": node.bus,
        "samples": [scoped(sample, session) for sample in samples],
    }


def fields() -> dict[str, list[str]]:
    return {"app": list(APP_FIELDS), "node": list(NODE_FIELDS)}
