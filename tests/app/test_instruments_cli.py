"""``etalon instruments``: import a DCC, link it (serial checked, instant in the future by
default), list, show, replace, unlink — in English and Vietnamese — and every refusal with
its reason and exit status 1 (2 for a bad command line)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from app.cli import main
from gateway.records.chain import LedgerSettings
from gateway.records.config import RecordsConfig
from gateway.records.store import RecordStore
from tests.gateway.corrections.test_instruments import declare
from tests.support.calibration import ErrorCurve, prt_dcc
from tests.support.processes import write_yaml

CHANNEL = "lab/bath-1/prt/temperature"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    records = tmp_path / "records.db"
    settings = RecordsConfig.model_validate({"path": records})

    async def prepare() -> None:
        store = RecordStore(records, LedgerSettings.of(settings, "lab", "gw-1"))
        await store.open()
        try:
            await declare(store)
        finally:
            await store.close()

    asyncio.run(prepare())
    return write_yaml(
        tmp_path / "gateway.yaml",
        {
            "site": "lab",
            "mqtt": {"port": 1},
            "spool": {"path": str(tmp_path / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(records)},
            "corrections": {"reload_s": 0.5},
        },
    )


def dcc_file(tmp_path: Path, number: str, **options: object) -> Path:
    path = tmp_path / f"{number}.xml"
    due = options.pop("due", dt.date(2099, 1, 1))
    path.write_bytes(prt_dcc(number, ErrorCurve(), due=due, **options))  # type: ignore[arg-type]
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["instruments", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_import_link_list_show_replace_unlink(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["-c", str(config)]
    status, out, _ = run(capsys, *c, "import-dcc", str(dcc_file(tmp_path, "PRT-A")))
    assert status == 0
    assert out.startswith(
        "certificate PRT-A of Vietnam Metrology Institute registered as instrument certificate 1"
    )
    assert "serial PRT-4711; 1 table(s); due 2099-01-01" in out
    status, out, _ = run(
        capsys, *c, "--lang", "vi", "import-dcc", str(dcc_file(tmp_path, "PRT-B", due=None)),
        "--due", "2098-06-30",
    )  # fmt: skip
    assert status == 0 and "hết hạn 2098-06-30" in out
    status, out, _ = run(capsys, *c, "link", CHANNEL, "1")
    assert status == 0
    assert out.startswith(f"{CHANNEL}: corrected by table 0 (Temperature / Calibration table)")
    status, out, _ = run(capsys, *c, "list")
    assert status == 0
    assert "lab/bath-1/prt  PRT-4711" in out and "PRT-A (1)" in out
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    status, out, _ = run(capsys, *c, "--lang", "vi", "link", CHANNEL, "2", "--at", later)
    assert status == 0
    assert "được hiệu chính bằng bảng 0" in out and "thay cho chứng chỉ PRT-A (mã 1)" in out
    status, out, _ = run(capsys, *c, "show", "lab/bath-1/prt")
    assert status == 0
    assert "instrument lab/bath-1/prt: Example Instruments PRT-1, serial PRT-4711" in out
    assert out.count("temperature: certificate") == 2
    assert "table 0 (Temperature / Calibration table), error, °C, 0.02 … 100.01, 5 points" in out
    sooner = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
    status, _, err = run(capsys, *c, "unlink", CHANNEL, "--at", sooner)
    assert status == 1 and "cannot end at" in err
    after = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)).isoformat()
    status, out, _ = run(capsys, *c, "unlink", CHANNEL, "--at", after)
    assert status == 0 and "certificate PRT-B no longer corrects it" in out
    assert main(["records", "-c", str(config), "verify"]) == 0


def test_refusals(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = ["-c", str(config)]
    status, _, err = run(capsys, "list")
    assert status == 2 and "config is required" in err
    status, _, err = run(capsys, *c, "import-dcc", str(tmp_path / "missing.xml"))
    assert status == 1 and "cannot read" in err and "missing.xml" in err
    html = tmp_path / "page.xml"
    html.write_text("<html><body>not a certificate</body></html>")
    status, _, err = run(capsys, *c, "import-dcc", str(html))
    assert status == 1 and "HTML page" in err
    status, _, err = run(capsys, *c, "import-dcc", str(dcc_file(tmp_path, "X")), "--due", "soon")
    assert status == 1 and "due date 'soon'" in err
    run(capsys, *c, "import-dcc", str(dcc_file(tmp_path, "PRT-X", serial="PRT-9999")))
    status, _, err = run(capsys, *c, "--lang", "vi", "link", CHANNEL, "1")
    assert status == 1
    assert "báo số sê-ri PRT-4711, chứng chỉ PRT-X dành cho số sê-ri PRT-9999" in err
    status, _, err = run(capsys, *c, "link", "lab/bath-1/prt", "1")
    assert status == 1 and "is not SITE/AGENT/INSTRUMENT/CHANNEL" in err
    status, _, err = run(capsys, *c, "link", CHANNEL, "7")
    assert status == 1 and "no instrument certificate 7" in err
    status, _, err = run(capsys, *c, "link", CHANNEL, "1", "--at", "2001-01-01T00:00:00")
    assert status == 1 and "is in the past" in err
    status, _, err = run(capsys, *c, "unlink", CHANNEL)
    assert status == 1 and "has no certificate linked" in err
    with pytest.raises(SystemExit) as usage:
        main(["instruments", *c, "link", CHANNEL, "one"])
    assert usage.value.code == 2
    hostile = {"channels": [{"channel": "a/b"}]}
    bad = write_yaml(
        tmp_path / "bad.yaml",
        {"site": "lab", "records": {"path": "r.db"}, "corrections": hostile},
    )
    status, _, err = run(capsys, "-c", str(bad), "list")
    assert status == 1 and "corrections.channels[0].channel: String should match pattern" in err
