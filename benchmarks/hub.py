"""The national hub: entries/s ingested from N labs, and search latency over 1,000,000 items.

A real PostgreSQL is started in a temp dir (as the tests do), a hub runs in this process, and:

- ingest: N labs (default 3) push K entries each (default 10,000; standards, certificates,
  identities and audit entries, a checkpoint every 1,000) over HTTP in segments of 1,000, all labs
  at once. The hub verifies each segment (chain, signatures), stores the entries (COPY), moves the
  head and projects the registry, in one transaction per push. Baseline, same run: a bare COPY of
  the same rows into a table without indexes — what PostgreSQL itself takes.
- search: the registry is filled with 1,000,000 generated instruments and standards over 50
  labs (SQL generate_series), then ``hub.search.search`` runs typical queries (serial prefix, part
  of a model, lab + kind, a province's overdue items); median of 7 runs each, with the latency of
  a primary-key lookup through the same connection as the baseline.

    .venv/bin/python -m benchmarks.hub [--labs 3] [--entries 10000] [--items 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from tests.support.hub import LabLedger, bearer, hub_settings, running_hub, staff_env  # noqa: E402
from tests.support.postgres import PASSWORD_ENV, PostgresServer  # noqa: E402

from hub.search import SearchQuery, search  # noqa: E402


def lab_ledger(name: str, entries: int) -> LabLedger:
    """A lab's ledger of ``entries`` entries of the kinds a gateway chains."""
    lab = LabLedger(name)
    n = 0
    while len(lab.entries) < entries:
        kind = n % 10
        if kind == 0:
            lab.standard(f"S{n}")
        elif kind == 1:
            lab.certificate(f"S{n - 1}", f"C-{n}", "nmi", calibrated_ns=lab.now, due_ns=lab.now)
        elif kind == 2:
            lab.identity(f"site/agent/i{n}")
        else:
            lab.audit(f"check {n}")
        n += 1
        if len(lab.entries) % 1000 == 0:
            lab.checkpoint()
    if not lab.checkpoints or lab.checkpoints[-1].count != len(lab.entries):
        lab.checkpoint()
    return lab


async def ingest(server: PostgresServer, labs: int, entries: int, tmp: Path) -> dict[str, float]:
    """Entries/s through the hub, and a bare COPY of the same rows."""
    for key, value in staff_env().items():
        os.environ[key] = value
    ledgers = [lab_ledger(f"lab-{i}", entries) for i in range(labs)]
    dbname = server.create_database("bench")
    async with (
        running_hub(hub_settings(tmp, server, dbname, database={"pool_max": 8})) as hub,
        httpx.AsyncClient(base_url=hub.url or "", timeout=300) as client,
    ):
        tokens = {}
        for lab in ledgers:
            r = await client.post(
                "/api/v1/admin/labs",
                json={"lab": lab.lab, "public_key": lab.key.public_key.to_text(), "name": lab.lab},
                headers=bearer("HUB_ADMIN_TOKEN"),
            )
            tokens[lab.lab] = r.json()["token"]
        bodies = {lab.lab: [s.to_json() for s in lab.segments(max_entries=1000)] for lab in ledgers}

        async def push(lab: LabLedger) -> None:
            for body in bodies[lab.lab]:
                r = await client.post(
                    f"/api/v1/labs/{lab.lab}/segments",
                    content=body,
                    headers=bearer(tokens[lab.lab]),
                )
                assert r.status_code == 200, r.text

        started = time.perf_counter()
        await asyncio.gather(*(push(lab) for lab in ledgers))
        hub_s = time.perf_counter() - started
    rows = [(lab.lab, *entry) for lab in ledgers for entry in lab.entries]
    with psycopg.connect(server.conninfo(dbname), password=server.password) as conn:
        conn.execute(
            "CREATE TABLE raw (lab text, seq bigint, ts_ns bigint, kind text, subject text, "
            "actor text, body_json text, prev text, hash text)"
        )
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY raw FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        raw_s = time.perf_counter() - started
    server.drop_database(dbname)
    total = labs * entries
    return {"entries": total, "hub_per_s": total / hub_s, "raw_per_s": len(rows) / raw_s}


FILL = """
INSERT INTO labs (id, name, province, country, token_sha256, enrolled_ns, enrolled_by)
SELECT 'lab-' || i, 'Lab ' || i, 'province-' || (i % 20), 'VN', md5(i::text), 0, 'bench'
FROM generate_series(0, 49) i;
INSERT INTO registry (lab, item_type, item_key, kind, manufacturer, model, serial, status,
                      province, due_ns, entry_seq)
SELECT 'lab-' || (i % 50), CASE WHEN i % 10 = 0 THEN 'standard' ELSE 'instrument' END,
       'item-' || i, (ARRAY['dc_voltage','resistance','temperature','pressure'])[i % 4 + 1],
       'Maker ' || (i % 37), 'M' || (i % 997) || '-' || (i % 13), 'SN' || lpad(i::text, 9, '0'),
       'active', 'province-' || (i % 50 % 20),
       %(now)s + (i % 730 - 365)::bigint * 86400000000000, i
FROM generate_series(1, %(items)s) i;
ANALYZE registry;
"""


async def searches(server: PostgresServer, items: int) -> dict[str, Any]:
    """Median latency (ms) of typical searches over ``items`` rows."""
    from hub.db import migrate

    dbname = server.create_database("bench")
    url = server.conninfo(dbname)
    now = time.time_ns()
    async with await psycopg.AsyncConnection.connect(
        url, password=server.password, autocommit=True
    ) as conn:
        await migrate(conn)
        started = time.perf_counter()
        await conn.execute(FILL.replace("%(now)s", str(now)).replace("%(items)s", str(items)))
        fill_s = time.perf_counter() - started
        queries = {
            "serial prefix": SearchQuery(serial="SN000123"),
            "part of a model": SearchQuery(model="m77-"),
            "serial or model (q)": SearchQuery(q="0004567"),
            "lab + kind": SearchQuery(lab="lab-7", kind="resistance"),
            "province overdue": SearchQuery(province="province-3", calibration="overdue"),
            "standards due": SearchQuery(type="standard", calibration="due"),
        }
        results: dict[str, Any] = {"items": items, "fill_s": fill_s}
        baseline = []
        for i in range(7):
            started = time.perf_counter()
            await (
                await conn.execute("SELECT * FROM registry WHERE id = %s", (1000 + i,))
            ).fetchall()
            baseline.append(time.perf_counter() - started)
        results["pk lookup (baseline)"] = statistics.median(baseline) * 1000
        for name, query in queries.items():
            times = []
            for _ in range(7):
                started = time.perf_counter()
                page = await search(conn, query, 30, now)
                times.append(time.perf_counter() - started)
            results[name] = statistics.median(times) * 1000
            results[f"{name} hits"] = len(page["items"])
    server.drop_database(dbname)
    return results


def main() -> None:
    """Run both and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=3)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    args = parser.parse_args()
    server = PostgresServer()
    server.start()
    os.environ[PASSWORD_ENV] = server.password
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = asyncio.run(ingest(server, args.labs, args.entries, Path(tmp)))
        print(f"ingest: {args.labs} labs x {args.entries} entries, segments of 1,000")
        print(f"  hub (verify + store + project): {figures['hub_per_s']:,.0f} entries/s")
        print(f"  bare COPY of the same rows:     {figures['raw_per_s']:,.0f} rows/s")
        print(
            f"  ratio hub / COPY:               {figures['hub_per_s'] / figures['raw_per_s']:.3f}"
        )
        found = asyncio.run(searches(server, args.items))
        print(
            f"search over {found['items']:,} items (filled in {found['fill_s']:.1f} s), median ms:"
        )
        base = found["pk lookup (baseline)"]
        for name, value in found.items():
            if name in ("items", "fill_s") or name.endswith(" hits"):
                continue
            hits = found.get(f"{name} hits")
            extra = "" if hits is None else f"  ({hits} items on the first page)"
            print(f"  {name:<22} {value:8.2f} ms  x{value / base:6.1f} of a pk lookup{extra}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
