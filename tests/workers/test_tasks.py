"""The Celery tasks only wire: one per job, each a thin call into ``newsletter.jobs``."""

from __future__ import annotations

import inspect

import pytest

from newsletter import jobs

MAX_TASK_BODY_LINES = 5


@pytest.fixture
def celery_app(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> object:
    monkeypatch.setenv("NEWSLETTER_BROKER_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "s" * 40)
    from workers import tasks
    from workers.app import app

    app.loader.import_default_modules()
    return tasks


def test_every_job_has_a_task_under_its_name(celery_app: object) -> None:
    from workers.app import app

    registered = {name for name in app.tasks if name.startswith(jobs.TASK_PREFIX)}
    assert registered == {jobs.task_name(job) for job in jobs.JOBS}


def test_tasks_are_thin_wrappers(celery_app: object) -> None:
    from workers.app import app

    for name in jobs.JOBS:
        task = app.tasks[jobs.task_name(name)]
        source = inspect.getsource(task.run).strip().splitlines()
        body = [line for line in source if not line.lstrip().startswith(("@", "def ", '"""', "#"))]
        assert 0 < len(body) <= MAX_TASK_BODY_LINES, name
        assert f"jobs.{name}(" in "\n".join(body)
