"""The in-process cache of order facts used on the usage hot path."""

from __future__ import annotations

import threading

from billingcenter.model import Order


class OrderCache:
    """Orders already read, by id; bounded, oldest entries forgotten first.

    Sound because an order mirror never changes once stored (a different
    repeat is a conflict) and is never deleted; only orders read from committed
    rows are remembered, so a miss costs a SELECT and a hit is never wrong.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._orders: dict[str, Order] = {}
        self._lock = threading.Lock()

    def lookup(self, order_ids: set[str]) -> tuple[dict[str, Order], set[str]]:
        """The cached orders among ``order_ids``, and the ids that are not cached."""
        found: dict[str, Order] = {}
        with self._lock:
            for order_id in order_ids:
                order = self._orders.get(order_id)
                if order is not None:
                    found[order_id] = order
        return found, order_ids - found.keys()

    def remember(self, order: Order) -> None:
        """Cache an order read from a committed row."""
        with self._lock:
            if len(self._orders) >= self._size:
                del self._orders[next(iter(self._orders))]
            self._orders[order.order_id] = order
