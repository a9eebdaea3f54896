"""The HTTP client StripeGateway talks through: Stripe's RequestsClient, held to a time budget.

Each request waits at most the per-call timeout or what is left of the request's budget
(payments/budget.py), whichever is less; once the budget is spent no call and no retry starts
(the library's APIConnectionError, which the gateway reports as GatewayUnavailable: a 503).
"""

from __future__ import annotations

from typing import Any

import stripe

from ..budget import BudgetSpent, remaining

# Below this many seconds left, a call (or a retry after its back-off) is not started.
MIN_CALL_SECONDS = 0.5


class BudgetedRequestsClient(stripe.RequestsClient):
    """RequestsClient whose timeout shrinks to the request's remaining budget."""

    @property
    def _timeout(self) -> float:
        """The timeout of the next HTTP request: the per-call one, or less when the budget says."""
        left = remaining()
        if left is None:
            return self._per_call_timeout
        if left < MIN_CALL_SECONDS:
            # Raised inside the library's request: it becomes an APIConnectionError, not retried.
            raise BudgetSpent("the request's time for the payment provider is spent")
        return min(self._per_call_timeout, left)

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._per_call_timeout = value

    def _should_retry(self, response: Any, api_connection_error: Any, num_retries, max_retries):
        """Retry as the library does, unless the back-off would outlast the budget."""
        left = remaining()
        if left is not None and left < self.MAX_DELAY + MIN_CALL_SECONDS:
            return False
        return super()._should_retry(response, api_connection_error, num_retries, max_retries)
