"""What an import is asked to do: the one options type of the importer, its jobs and the CLI.

Pure. ``subscribers import`` builds an ``ImportOptions`` from its flags; the job row keeps
them for the worker (``importjob``), which gives them back to ``run_import``; the batch
writer and the reader take what they need from the same value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from newsletter.subscribers.statuses import ConsentSource, LegalBasis


class ImportMode(enum.StrEnum):
    ADD = "add"  # existing subscribers keep their name and attributes
    UPSERT = "upsert"  # existing subscribers take the file's name and attributes


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """The operator's choices for one import (``subscribers import`` flags)."""

    upsert: bool = False  # --upsert: the file's names and attributes win
    # --reactivate-suppressed: a suppressed subscriber in the file becomes active again, and
    # a subscription they had left is renewed (both audited); without it they stay suppressed.
    reactivate_suppressed: bool = False
    check_deliverability: bool = False  # --check-deliverability: DNS lookups per domain
    legal_basis: LegalBasis = LegalBasis.CONSENT  # why these people may be mailed (LAW-07)
    # Where the consent the rows carry was given; an import job is always an import.
    source: ConsentSource = ConsentSource.IMPORT

    @property
    def mode(self) -> ImportMode:
        return ImportMode.UPSERT if self.upsert else ImportMode.ADD
