"""Benchmark the once-per-issue render and the per-recipient fill; compare the two CSS inliners.

Run from the repository root (premailer is a bench-only dependency)::

    /work/venv/bin/python -m bench.render [--runs 200] [--recipients 20000]

Prints medians; docs/render.md and docs/benchmarks.md record a run and the decision it supports.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import premailer

from newsletter.content.bulletin import decode_bulletin, parse_bulletin
from newsletter.issues.modes import IssueMode
from newsletter.render.email import (
    compile_mjml,
    css_inliner,
    environment,
    inline_css,
    render_email,
    render_mjml,
)
from newsletter.render.personalise import PersonalTemplate
from newsletter.render.view import IssueView, Sender

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = REPO / "templates" / "email"
SAMPLE = REPO / "newsletter" / "samples" / "bulletin-2025-12-11.txt"
SENDER = Sender(
    "Central Asia Weekly",
    "Example Media LLC, 12 Abai Avenue, Almaty, Kazakhstan",
    "https://example.com",
)
STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style>", re.DOTALL | re.IGNORECASE)
UP_CELL_INLINE = re.compile(r'class="nl-num nl-up"[^>]*style="[^"]*color:\s*#0f7b3e')


def median_ms(action: Callable[[], object], runs: int) -> tuple[float, float]:
    """(first call, median of the following ``runs``) in milliseconds."""
    start = time.perf_counter()
    action()
    first = (time.perf_counter() - start) * 1000
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(samples)


def premailer_inline(html: str, css: str) -> str:
    # Settings fit for email, since premailer's defaults strip !important from the media queries
    # it keeps: keep media queries and their !important, no network, and silence cssutils (it
    # logs a warning per -ms-interpolation-mode otherwise).
    return str(
        premailer.Premailer(
            html,
            css_text=css,
            keep_style_tags=True,
            strip_important=False,
            allow_network=False,
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    )


def describe(name: str, before: str, after: str) -> str:
    mjml03 = bool(UP_CELL_INLINE.search(STYLE_BLOCK.sub("", after)))
    return (
        f"  {name:<11} {len(after.encode()):>7,} B  !important {before.count('!important')}"
        f"→{after.count('!important')}  <!--[if {before.count('<!--[if')}"
        f"→{after.count('<!--[if')}  @media {before.count('@media')}→{after.count('@media')}"
        f"  up colour inline without <style>: {'yes' if mjml03 else 'NO'}"
    )


def bench_issue(label: str, issue: IssueView, runs: int) -> None:
    env = environment(TEMPLATE_DIR)
    inliner = css_inliner(TEMPLATE_DIR)
    css = (TEMPLATE_DIR / "inline.css").read_text(encoding="utf-8")
    text = env.get_template("text.txt.j2")
    mjml_source = render_mjml(issue, SENDER, env)
    before = compile_mjml(mjml_source)

    print(
        f"\n{label}: {len(issue.articles)} articles, {len(issue.rates)} rates; "
        f"MRML output {len(before.encode()):,} B"
    )
    for stage, action in (
        ("Jinja + lint", lambda: render_mjml(issue, SENDER, env)),
        ("mjml-python", lambda: compile_mjml(mjml_source)),
        ("css-inline", lambda: inline_css(before, inliner)),
        ("Jinja text part (textwrap)", lambda: text.render(issue=issue, sender=SENDER, web=False)),
        ("premailer", lambda: premailer_inline(before, css)),
        (
            "whole render_email (css-inline, + text part)",
            lambda: render_email(issue, SENDER, TEMPLATE_DIR),
        ),
    ):
        first, median = median_ms(action, runs)
        print(f"  {stage:<45} median {median:8.3f} ms   first {first:8.3f} ms")
    print(describe("css-inline", before, inline_css(before, inliner)))
    print(describe("premailer", before, premailer_inline(before, css)))
    doctype = premailer_inline(before, css).lstrip()[:9].lower() == "<!doctype"
    print(f"  premailer keeps <!doctype html>: {'yes' if doctype else 'NO (quirks mode)'}")


def bench_personalise(issue: IssueView, recipients: int) -> None:
    email = render_email(issue, SENDER, TEMPLATE_DIR)
    start = time.perf_counter()
    html_template = PersonalTemplate.split(email.html, "html")
    text_template = PersonalTemplate.split(email.text, "text")
    split_us = (time.perf_counter() - start) * 1e6
    people = [
        {
            "name": f"Reader {n}",
            "email": f"reader{n}@example.org",
            "unsubscribe_url": f"https://example.com/u/{n:08d}?t=abc&k=1",
            "view_url": f"https://example.com/v/2025-12-11?r={n}",
        }
        for n in range(recipients)
    ]
    print(
        f"\npersonalisation: split html+text once {split_us:.0f} µs; "
        f"{len(html_template.fields)} html markers, {len(text_template.fields)} text markers"
    )
    for label, template in (("html", html_template), ("text", text_template)):
        batches = []
        for chunk in range(0, recipients, 1000):
            batch = people[chunk : chunk + 1000]
            start = time.perf_counter()
            for values in batch:
                template.fill(values)
            batches.append((time.perf_counter() - start) * 1e6 / len(batch))
        print(
            f"  fill {label}: median {statistics.median(batches):6.2f} µs per recipient "
            f"(batches of 1000, {recipients:,} recipients; target < 50 µs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=20_000)
    args = parser.parse_args()

    sample = IssueView.from_bulletin(
        parse_bulletin(decode_bulletin(SAMPLE.read_bytes())),
        subject="Central Asia Weekly – 11 December 2025",
        preheader=(
            "The SCO summit seen from the West, China in Kazakhstan and Tajikistan, and rates"
        ),
    )
    twelve = replace(
        sample,
        articles=tuple(
            replace(a, id=n, title=f"{a.title} ({n})", url=f"https://example.com/news/{n}")
            for n, a in enumerate(sample.articles * 2, start=1)
        ),
    )
    bench_issue("sample", sample, args.runs)
    bench_issue("sample, excerpt mode", replace(sample, mode=IssueMode.EXCERPT), args.runs)
    bench_issue("12 articles", twelve, max(args.runs // 4, 10))
    bench_personalise(sample, args.recipients)


if __name__ == "__main__":
    main()
