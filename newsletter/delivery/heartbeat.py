"""The batch's heartbeat: its leases are renewed while it lives, and only while it lives.

A batch holds two kinds of lease: its send lane (one SMTP connection, ``lanes``) and its
claimed ledger rows (``ledger``). Both last NEWSLETTER_LEASE_SECONDS. A thread renews them
every third of that, whatever the loop is doing (a slow relay may take longer than a lease for
one message), so a live batch never loses its lane to another worker and the connection cap
holds; a worker that dies takes its thread with it, and its leases lapse within one lease.

If a renewal finds the lane taken (the thread was starved past its lease, e.g. the database was
unreachable), ``lost`` is set and the loop stops at its next status check: the rows are no
longer safely ours.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from newsletter.delivery import lanes, ledger
from newsletter.delivery.context import SendContext
from newsletter.errors import NewsletterError

log = logging.getLogger(__name__)
RENEWALS_PER_LEASE = 3


class Heartbeat:
    def __init__(self, ctx: SendContext, lane: int) -> None:
        self.ctx = ctx
        self.lane = lane
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{lane}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.ctx.settings.lease_seconds / RENEWALS_PER_LEASE
        while not self._stop.wait(interval):
            try:
                self.renew()
            except NewsletterError:
                # The database is unreachable for now: the next beat tries again; if the lease
                # runs out meanwhile, the renewal after it finds the lane gone and says so.
                log.warning("lease renewal of lane %s failed", self.lane, exc_info=True)

    def renew(self) -> None:
        """Push both leases one lease further; set ``lost`` if the lane is no longer ours."""
        ctx, now, lease = self.ctx, self.ctx.clock(), self.ctx.settings.lease_seconds
        with ctx.sessions() as session:
            if not lanes.renew_lane(
                session, self.lane, owner=ctx.owner, now=now, lease_seconds=lease
            ):
                self.lost.set()
                return
            ledger.renew_lease(session, owner=ctx.owner, now=now, lease_seconds=lease)
