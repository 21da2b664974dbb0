"""A group coordinator double that hands errors to the consumer exactly as aiokafka's does (its own methods)."""

from __future__ import annotations

import asyncio

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.consumer.subscription_state import SubscriptionState


class BorrowedCoordinator:
    """aiokafka's own way of handing a group error to the consumer, borrowed from its ``GroupCoordinator``:
    the error aborts the fetcher's wait for an assignment, and the coordinator waits until someone calls
    ``check_errors`` before it joins the group again."""

    _push_error_to_user = GroupCoordinator._push_error_to_user
    check_errors = GroupCoordinator.check_errors

    def __init__(self) -> None:
        self._subscription = SubscriptionState()
        self._subscription.register_fetch_waiters(set())  # the fetcher registers its own
        self._pending_exception: BaseException | None = None
        self._error_consumed_fut: asyncio.Future[None] | None = None
        self._closing = asyncio.get_running_loop().create_future()
        self._coordination_task: asyncio.Task[None] | None = None
        self.joined_again = False

    async def routine(self, error: BaseException, fetch_waiting: bool = True) -> None:
        """Push ``error`` to the consumer (once a fetch waits for the assignment, if ``fetch_waiting``), and note
        when it is taken."""
        while fetch_waiting and not self._subscription._assignment_waiters:
            await asyncio.sleep(0)
        await self._push_error_to_user(error)  # returns once the error is taken
        self.joined_again = True
