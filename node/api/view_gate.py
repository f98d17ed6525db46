"""The derived views the API reads, and the gate in front of them: a route that reads a view
goes through ``ViewGate.require`` (or the ``index`` and ``analytics`` properties); a view
that is failed, rebuilding or too far behind answers 503 with ``Retry-After``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from node.analytics.index import AnalyticsIndex
from node.api.feeds import CommitWaiters
from node.api.problems import ApiError
from node.api.stream import Hub
from node.protocol import limits
from node.views.analytics import ANALYTICS
from node.views.base import ViewState
from node.views.history import HISTORY
from node.views.history_index import HistoryIndex
from node.views.runner import ViewRunner

_UNAVAILABLE: Final = {
    ViewState.FAILED: "failed; the node's operator rebuilds it with 'relance-node views rebuild'",
    ViewState.REBUILDING: "rebuilding from the blocks",
    ViewState.LAGGING: "catching up with the chain",
}


@dataclass(frozen=True, slots=True)
class ApiViews:
    """The derived views the API reads, built and run by the node (``node.run.daemon``)."""

    runner: ViewRunner
    index: HistoryIndex
    analytics: AnalyticsIndex
    hub: Hub
    waiters: CommitWaiters


class ViewGate:
    """The derived views, each read only while it is serving."""

    def __init__(self, views: ApiViews) -> None:
        self.views = views  # ungated: for the node's own wiring, never a route's read
        self._views = views

    @property
    def runner(self) -> ViewRunner:
        return self._views.runner

    def require(self, name: str) -> None:
        """503 (problem+json, Retry-After) unless the view ``name`` is serving."""
        runner = self._views.runner
        if name not in runner.names:
            raise ApiError(503, f"this node does not run the {name} view", slug="view-absent")
        state = runner.status(name).state
        if state is ViewState.SERVING:
            return
        raise ApiError(
            503,
            f"the {name} view is {state.value}: {_UNAVAILABLE[state]}",
            slug=f"view-{state.value}",
            headers={"Retry-After": str(limits.VIEW_RETRY_AFTER_S)},
        )

    @property
    def index(self) -> HistoryIndex:
        """The history index, if its view is serving (else 503)."""
        self.require(HISTORY)
        return self._views.index

    @property
    def analytics(self) -> AnalyticsIndex:
        """The analytics fold, if its view is serving (else 503)."""
        self.require(ANALYTICS)
        return self._views.analytics

    @property
    def hub(self) -> Hub:
        """The event stream's subscribers (a live feed: no gate)."""
        return self._views.hub
