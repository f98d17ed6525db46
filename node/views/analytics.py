"""The communes' analytics fold (``node.analytics``) as a derived view, in memory."""

from __future__ import annotations

from typing import Final

from node.analytics.index import AnalyticsIndex
from node.views.base import FedBlock

ANALYTICS: Final = "analytics"


class AnalyticsView:
    """Replays every block at start (the fold is in memory); a rebuild starts it again."""

    name: Final = ANALYTICS

    def __init__(self, index: AnalyticsIndex) -> None:
        self.index = index

    def height(self) -> int:
        return self.index.height()

    def apply(self, fed: FedBlock) -> None:
        self.index.add_decoded(fed.height, fed.time_ms, fed.txs)

    def reset(self) -> None:
        self.index.reset()
