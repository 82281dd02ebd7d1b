"""The CLI contract of the first stages: names, JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SAMPLE_BULLETIN, Run


def test_import_bulletin_prints_the_documented_json(run_cli: Run) -> None:
    result = run_cli("import-bulletin", str(SAMPLE_BULLETIN), "--json")

    assert result.exit_code == 0
    document = result.json()
    assert document["date"] == "2025-12-11"
    assert document["rates"][0] == {"pair": "KGS/USD", "rate": "0.01144", "change_pct": "0"}
    assert document["rates"][4] == {"pair": "TMT/USD", "rate": "0.28490", "change_pct": "0"}
    assert [len(a["paragraphs"]) for a in document["articles"]] == [5, 10, 6, 3, 5, 6]
    assert all(isinstance(a["id"], int) and a["title"] for a in document["articles"])


def test_issue_create_render_and_check(run_cli: Run, tmp_path: Path) -> None:
    articles = run_cli("import-bulletin", str(SAMPLE_BULLETIN), "--json").json()["articles"]
    chosen = f"{articles[2]['id']},{articles[0]['id']}"

    created = run_cli(
        "issue",
        "create",
        "--subject",
        "Weekly",
        "--articles",
        chosen,
        "--rates",
        "2025-12-11",
        "--json",
    )
    issue_id = created.json()["id"]
    rendered = run_cli(
        "issue",
        "render",
        str(issue_id),
        "--html",
        str(tmp_path / "p.html"),
        "--text",
        str(tmp_path / "p.txt"),
        "--json",
    )
    checked = run_cli("issue", "check", str(issue_id), "--json")

    assert created.exit_code == 0
    assert rendered.exit_code == 0
    assert rendered.json()["html_bytes"] > 10_000
    html = (tmp_path / "p.html").read_text()
    assert html.index(articles[2]["title"]) < html.index(articles[0]["title"])
    assert "%%NL." not in html
    assert checked.exit_code == 0
    assert checked.json() == {"id": issue_id, "ok": True, "problems": []}


def test_a_failing_check_exits_non_zero_with_its_problems(run_cli: Run) -> None:
    run_cli("import-bulletin", str(SAMPLE_BULLETIN))
    issue_id = run_cli(
        "issue", "create", "--subject", "Late", "--date", "2026-03-01", "--json"
    ).json()["id"]

    result = run_cli("issue", "check", str(issue_id), "--json")

    assert result.exit_code == 1
    assert not result.json()["ok"]
    assert "rates are from 2025-12-11" in result.json()["problems"][0]


def test_user_mistakes_are_one_line_errors_with_exit_code_2(run_cli: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken.txt"
    broken.write_text("• KGS/USD = 0.01 0%\nnot a date at all\n", encoding="utf-8")

    cases = [
        run_cli("import-bulletin", str(tmp_path / "missing.txt")),
        run_cli("import-bulletin", str(broken)),
        run_cli("issue", "render", "4242"),
        run_cli("issue", "create", "--subject", "x", "--articles", "one,two"),
        run_cli("issue", "frobnicate"),
    ]

    for result in cases:
        assert result.exit_code == 2, result
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    assert "line 2:" in cases[1].stderr


def test_errors_are_json_with_the_json_flag(run_cli: Run) -> None:
    result = run_cli("issue", "show", "4242", "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == '{"error": "no issue with id 4242"}'


def test_a_bad_setting_is_a_one_line_error(run_cli: Run) -> None:
    result = run_cli("issue", "ls", env={"NEWSLETTER_RATE_LIMIT": "fast"})

    assert result.exit_code == 2
    assert result.stderr.startswith("error: NEWSLETTER_RATE_LIMIT='fast': ")


def test_rendering_an_issue_over_the_size_budget_warns(run_cli: Run, tmp_path: Path) -> None:
    paragraph = "The regional markets moved in step with the rouble this week. " * 12
    articles = "".join(
        f"Market Note Number {n} On Regional Trade\n\n{paragraph}\n\n{paragraph}\n\n"
        for n in range(40)
    )
    big = tmp_path / "big.txt"
    big.write_text(f"• KGS/USD = 0.01144 0%\n11 December 2025\n\n{articles}", encoding="utf-8")
    run_cli("import-bulletin", str(big))
    issue_id = run_cli("issue", "create", "--subject", "Big", "--json").json()["id"]

    result = run_cli("issue", "render", str(issue_id), "--json")

    assert result.exit_code == 0
    assert result.json()["over_budget"] is True
    assert "over the 90 KB budget; Gmail clips messages at about 102 KB" in result.stderr
    assert run_cli("issue", "check", str(issue_id)).exit_code == 1
