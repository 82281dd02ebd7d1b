"""Fixtures for the render tests: the sample issue, a 12-article issue, their rendered emails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from newsletter.render.email import RenderedEmail, render_email
from newsletter.render.view import IssueView
from tests.render.samples import SENDER, TEMPLATE_DIR, big_issue, sample_issue


@pytest.fixture(scope="session")
def sample() -> IssueView:
    return sample_issue()


@pytest.fixture(scope="session")
def big() -> IssueView:
    return big_issue()


@pytest.fixture(scope="session")
def rendered(sample: IssueView) -> RenderedEmail:
    return render_email(sample, SENDER, TEMPLATE_DIR)


@pytest.fixture(scope="session")
def rendered_big(big: IssueView) -> RenderedEmail:
    return render_email(big, SENDER, TEMPLATE_DIR)


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    """A private copy of the templates that a test may break."""
    target = tmp_path / "email"
    shutil.copytree(TEMPLATE_DIR, target)
    return target
