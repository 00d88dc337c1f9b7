"""``etalon calibrate list|show|report|dcc|run|resume`` on a completed run, in English and in
Vietnamese, and what they refuse: a malformed ``--uut``, an unknown run, a run with no record yet,
signing options that do not go together or a key that is not the certificate's."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from app.cli import main
from calibration.state import RunStore
from metrology import dcc
from metrology.certificate.record import load_record, record_sha256
from tests.calibration.conftest import Bench, procedure
from tests.support.pki import certificate_authority, signer


def _etalon(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


async def etalon(*args: str) -> tuple[int, str, str]:
    """The command as a user types it, on a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(_etalon, *args)


@pytest.fixture
async def completed(bench: Bench, store: RunStore, tmp_path: Path) -> str:
    data = procedure(points=[{"nominal": 1, "range": 10}, {"nominal": 7, "range": 10}])
    run, outcome = await bench.run(store, bench.procedure(data))
    assert outcome.status == "completed"
    return run


async def test_list_show_report_and_dcc_of_a_completed_run(
    completed: str, store: RunStore, tmp_path: Path
) -> None:
    data = str(tmp_path / "data")
    row = await store.get(completed)
    assert row is not None and row.record is not None
    code, out, _ = await etalon("calibrate", "list", "--data-dir", data)
    assert code == 0 and completed in out and "completed" in out
    assert out.splitlines()[0].split()[:3] == ["RUN", "PROCEDURE", "UUT"]
    code, out, _ = await etalon("--lang", "vi", "calibrate", "list", "--data-dir", data)
    assert code == 0 and "hoàn tất" in out and out.startswith("LẦN")
    code, out, _ = await etalon("calibrate", "list", "--json", "--data-dir", data)
    [summary] = json.loads(out)
    assert summary["run"] == completed and summary["record_sha256"] == row.record_sha256
    code, out, _ = await etalon("calibrate", "show", completed, "--json", "--data-dir", data)
    assert code == 0 and record_sha256(load_record(out)) == row.record_sha256
    code, out, _ = await etalon("calibrate", "show", completed, "--data-dir", data)
    assert code == 0 and "[1] 1 V:" in out and "[2] 7 V:" in out

    html = tmp_path / "out" / "report.html"
    code, out, _ = await etalon(
        "calibrate", "report", completed, "--html", str(html), "--data-dir", data
    )
    assert code == 0 and f"{html} written" in out
    assert "Calibration report" in html.read_text(encoding="utf-8")
    code, _, _ = await etalon(
        "--lang", "vi", "calibrate", "report", completed, "--html", str(html), "--data-dir", data
    )
    assert code == 0 and "Báo cáo hiệu chuẩn" in html.read_text(encoding="utf-8")

    document = tmp_path / "out" / "run.dcc.xml"
    code, _, _ = await etalon(
        "calibrate", "dcc", completed, "--out", str(document), "--data-dir", data
    )
    assert code == 0
    dcc.validate(document.read_bytes())
    assert dcc.verify(document.read_bytes(), anchors=[]).status == "unsigned"

    ca = certificate_authority()
    lab, other = signer(ca), signer(ca, "another lab")
    key, cert, wrong = tmp_path / "lab.key", tmp_path / "lab.pem", tmp_path / "other.key"
    for path, identity in ((key, lab), (wrong, other)):
        path.write_bytes(
            identity.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert.write_bytes(lab.certificate.public_bytes(serialization.Encoding.PEM))
    signed = tmp_path / "out" / "signed.dcc.xml"
    code, _, err = await etalon(
        "calibrate", "dcc", completed, "--out", str(signed), "--sign-key", str(key),
        "--sign-cert", str(cert), "--data-dir", data,
    )  # fmt: skip
    assert code == 0, err
    assert dcc.verify(signed.read_bytes(), anchors=[ca.certificate]).status == "valid"
    code, _, err = await etalon(
        "calibrate", "dcc", completed, "--out", str(signed), "--sign-key", str(key),
        "--data-dir", data,
    )  # fmt: skip
    assert code == 1 and "--sign-key and --sign-cert go together" in err
    code, _, err = await etalon(
        "calibrate", "dcc", completed, "--out", str(signed), "--sign-key", str(wrong),
        "--sign-cert", str(cert), "--data-dir", data,
    )  # fmt: skip
    assert code == 1 and "cannot sign: the key does not belong to the certificate" in err


async def test_what_the_commands_refuse(bench: Bench, store: RunStore, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    path = str(bench.procedure())
    for bad in ("serial", "=MY1", "serial=", "serial=MY\x1b[31m", "my serial=1"):
        code, _, err = await etalon("calibrate", "run", path, "--uut", bad, "--data-dir", data)
        assert code == 1 and "--uut takes KEY=VALUE (serial=MY12345)" in err, (bad, err)
    code, _, err = await etalon(
        "--lang", "vi", "calibrate", "run", path, "--uut", "x", "--data-dir", data
    )
    assert code == 1 and "--uut nhận KHÓA=GIÁ_TRỊ" in err
    code, _, err = await etalon(
        "calibrate", "run", path, "--uut", "x", "--lang", "vi", "--data-dir", data
    )  # the option after the action, as the issue writes it
    assert code == 1 and "--uut nhận KHÓA=GIÁ_TRỊ" in err
    for action in ("show", "resume"):
        code, _, err = await etalon("calibrate", action, "20000101-000000-0000", "--data-dir", data)
        assert code == 1 and "no run 20000101-000000-0000 in" in err, (action, err)
    # a run that has not completed has no report
    from calibration.procedure import load_procedure
    from calibration.start import start_run

    run = await start_run(load_procedure(Path(path)), store, bench.clock, operator="An",
                          declared={})  # fmt: skip
    code, _, err = await etalon("calibrate", "report", run, "--html", str(tmp_path / "r.html"),
                          "--data-dir", data)  # fmt: skip
    assert code == 1 and f"run {run} is not complete (running): it has no record yet" in err
    assert not (tmp_path / "r.html").exists()
    code, _, err = await etalon("calibrate", "bogus")
    assert code == 2 and "invalid choice: 'bogus'" in err
