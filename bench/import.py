"""Benchmark of the subscriber CSV import: rows/s and peak RSS, on SQLite and PostgreSQL.

    python bench/import.py                      # 1,000,000 rows, both databases
    python bench/import.py --rows 200000 --only sqlite

Each import runs in a fresh child process on a fresh database (so the peak RSS is the
importer's own), through ``run_import`` exactly as the CLI calls it. The file has ~3,000
domains, a name with a comma in one row out of ten, two attribute columns, and 0.1 % bad rows.
Two runs per database: the first import, then the same file again (every row unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POSTGRES_ADMIN_URL = os.environ.get(
    "NEWSLETTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PEPPER = "bench-secret-key-0123456789abcdefghijklmnop"


def generate(path: Path, rows: int) -> None:
    rng = random.Random(42)
    domains = [f"mail{n}.example{n % 7}.org" for n in range(3_000)] + ["gmail.com"] * 500
    cities = ["Almaty", "Bishkek", "Tashkent", "Dushanbe", "Ashgabat", "Astana"]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,city,plan\n")
        for n in range(rows):
            if n % 1000 == 999:
                out.write(f"broken-{n}@,Nobody,,\n")
                continue
            name = f'"Doe, Jane {n}"' if n % 10 == 0 else f"Jane Doe {n}"
            out.write(
                f"User.{n}@{rng.choice(domains)},{name},{rng.choice(cities)},"
                f"{'pro' if n % 3 else 'free'}\n"
            )


def child(url: str, path: Path) -> None:
    """Run one import and print its figures as JSON (in the child process)."""
    from sqlalchemy.orm import sessionmaker

    from newsletter.db import create_database_engine
    from newsletter.subscribers.importer import ImportOptions, run_import
    from newsletter.subscribers.models import MailingList

    engine = create_database_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        found = session.scalar(sa.select(MailingList.id).where(MailingList.name == "bench"))
        if found is None:
            mailing_list = MailingList(name="bench", description="")
            session.add(mailing_list)
            session.flush()
            found = mailing_list.id
    started = time.perf_counter()
    result = run_import(factory.begin, path, found, ImportOptions(), pepper=PEPPER)
    seconds = time.perf_counter() - started
    rows = result.created + result.updated + result.unchanged + result.error_count
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": round(peak_mb, 1),
                "created": result.created,
                "unchanged": result.unchanged,
                "errors": result.error_count,
            }
        )
    )


def fresh_database(kind: str, workdir: Path) -> tuple[str, str | None]:
    from newsletter.db import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        upgrade(url)
        return url, None
    name = f"nl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url, name


def drop_database(name: str) -> None:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "subscribers.csv"
        generate(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"{args.rows:,} rows, {size_mb:.0f} MB CSV, Python {sys.version.split()[0]}")
        for kind in [args.only] if args.only else ["sqlite", "postgresql"]:
            url, pg_name = fresh_database(kind, workdir)
            try:
                for run in ("first import", "re-import"):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", url, str(csv_path)],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                    figures = json.loads(out)
                    print(
                        f"{kind:10} {run:12} {figures['rows_per_s']:>9,} rows/s "
                        f"{figures['seconds']:>7} s  peak RSS {figures['peak_rss_mb']} MB  "
                        f"created {figures['created']:,} unchanged {figures['unchanged']:,} "
                        f"errors {figures['errors']:,}"
                    )
            finally:
                if pg_name:
                    drop_database(pg_name)


if __name__ == "__main__":
    main()
