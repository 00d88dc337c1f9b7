"""Procedures: what ``etalon check`` accepts and what it refuses, each refusal naming the file, the
line and the field — points beyond the limits an instrument config declares, unknown instruments,
channels and targets, a source without a safe state, a reference certificate expired (or not yet
issued) on the run date, hostile files. A registered standard when the registry cannot be asked
is a note, not a refusal (the run itself refuses to start without it)."""

from __future__ import annotations

import contextlib
import copy
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from calibration.check import check_procedure
from calibration.procedure import Procedure, load_procedure, procedure_schema
from calibration.start import start_run
from calibration.state import RunStore
from core.clock import ManualClock
from core.errors import ConfigError
from tests.calibration.conftest import PROCEDURE, START_NS, write_yaml
from tests.support.certs import LabPki
from tests.support.processes import REPO, child_env, etalon_command
from tests.support.services import free_port


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the example bench's agent config."""
    shutil.copy(REPO / "config" / "agent-bench.yaml", tmp_path / "agent.yaml")
    return tmp_path


def write(folder: Path, data: dict[str, Any], name: str = "procedure.yaml") -> Path:
    return write_yaml(folder / name, data)


def changed(
    path: list[str | int], value: Any, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The procedure with one field (a path of keys and indexes) set to ``value``."""
    out = copy.deepcopy(data or PROCEDURE)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def line_of(problem: str, path: Path) -> str:
    """The text of the line a problem names."""
    match = re.match(rf"{re.escape(str(path))}:(\d+): ", problem)
    assert match, problem
    return path.read_text(encoding="utf-8").splitlines()[int(match.group(1)) - 1]


def test_the_example_procedure_is_valid() -> None:
    problems, notes = check_procedure(REPO / "config" / "procedures" / "dmm-dcv.yaml")
    assert problems == [] and notes == []


def test_the_test_procedure_is_valid(folder: Path) -> None:
    assert check_procedure(write(folder, PROCEDURE)) == ([], [])


def test_a_point_beyond_the_declared_limits_is_refused_with_file_line_and_field(
    folder: Path,
) -> None:
    data = changed(["points", 3, "nominal"], 25)
    path = write(folder, data)
    problems, _ = check_procedure(path)
    assert len(problems) == 1
    assert problems[0].endswith(
        "points[3].nominal: calibrator/voltage_dc: 25 V refused: above the limit of 20 V "
        "(limits -20 V … 20 V)"
    )
    assert "nominal: 25" in line_of(problems[0], path)


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        (["points", 4, "range"], 100, "points[4].range",
         "calibrator/voltage_dc_range: 100 V refused: not one of 0.1, 1, 10 V"),
        (["uut", "instrument"], "dmm-9", "uut.instrument",
         "no instrument 'dmm-9' in the agent config (it has calibrator, reference, room, uut-dmm, "
         "uut-xmtr)"),
        (["reference", "channel"], "reference-acv", "reference.channel",
         "instrument 'reference' has no channel 'reference-acv' (it has reference-dcv)"),
        (["source", "level"], "voltage_ac", "source.level",
         "instrument 'calibrator' declares no writable target 'voltage_ac' (targets: function, "
         "output, resistance, voltage_dc, voltage_dc_range)"),
        (["source", "setup", "function"], "CURR:DC", "source.setup.function",
         "calibrator/function: CURR:DC refused: not one of VOLT:DC, RES"),
        (["environment", "humidity", "channel"], "dew-point", "environment.humidity.channel",
         "instrument 'room' has no channel 'dew-point' (it has humidity, temperature)"),
        (["uut", "unit"], "mV", "uut.unit", "the channel uut-dmm/uut-dmm-dcv reads 'V', not 'mV'"),
        (["source", "instrument"], "reference", "source.instrument",
         "instrument 'reference' declares no safe_state: a source must have one (e.g. its output "
         "off)"),
    ],
)  # fmt: skip
def test_each_mismatch_with_the_agent_config_is_named(
    folder: Path, path: list[str | int], value: Any, field: str, reason: str
) -> None:
    procedure_path = write(folder, changed(path, value))
    problems, _ = check_procedure(procedure_path)
    assert any(p.endswith(f"{field}: {reason}") for p in problems), problems
    for problem in problems:
        assert re.match(rf"{re.escape(str(procedure_path))}:\d+: ", problem), problem


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["points", 0, "nominal"], ".nan", "points[0].nominal: Value error, the value must be"),
        (["uut", "specification"], "0.01 %", "uut.specification: the term '0.01 %' does not say"),
        (["readings"], 1, "readings: Input should be greater than or equal to 2"),
        (["title"], "DC\nvoltage", "title: String should match pattern"),
        (["decision_rule", "kind"], "lenient", "decision_rule.kind: Input should be"),
        (["settling", "max_std"], -1, "settling.max_std: Input should be greater than 0"),
        (["reference", "kind"], "oracle", "reference: Input tag 'oracle' found using 'kind'"),
        (["laboratory", "country_code"], "Vietnam", "laboratory.country_code: String should match"),
    ],
)
def test_a_bad_field_is_refused_with_its_line(
    folder: Path, path: list[str | int], value: Any, expected: str
) -> None:
    data = changed(path, value)
    procedure_path = write(folder, data)
    if value == ".nan":  # YAML's NaN, as a user would write it
        text = procedure_path.read_text(encoding="utf-8").replace("'.nan'", ".nan")
        procedure_path.write_text(text, encoding="utf-8")
    problems, _ = check_procedure(procedure_path)
    assert any(expected.replace("Value error, ", "") in p for p in problems), problems
    assert all(re.match(rf"{re.escape(str(procedure_path))}:\d+: ", p) for p in problems)


def test_an_unknown_key_and_a_duplicate_key_are_refused(folder: Path) -> None:
    data = changed(["uut", "resolutoin"], 1e-5)
    problems, _ = check_procedure(write(folder, data))
    assert any(p.endswith("uut.resolutoin: Extra inputs are not permitted") for p in problems)
    path = folder / "twice.yaml"
    text = write(folder, PROCEDURE).read_text(encoding="utf-8")
    path.write_text(text + "readings: 4\n", encoding="utf-8")
    problems, _ = check_procedure(path)
    assert problems == [f"{path}:{len(text.splitlines()) + 1}: readings: key appears twice"]


def test_an_expired_reference_certificate_is_refused_unless_allowed(folder: Path) -> None:
    expired = changed(["reference", "certificate", "calibration_date"], "2023-01-01")
    expired = changed(["reference", "certificate", "due_date"], "2024-01-01", expired)
    path = write(folder, expired)
    problems, _ = check_procedure(path)
    assert len(problems) == 1
    assert "reference.certificate.due_date: the reference's certificate REF-2026-0117 expired " \
        "on 2024-01-01" in problems[0]  # fmt: skip
    assert "allow_expired_reference: true" in problems[0]
    assert "due_date" in line_of(problems[0], path)
    allowed = write(folder, expired | {"allow_expired_reference": True}, "allowed.yaml")
    assert check_procedure(allowed) == ([], [])


async def test_an_allowed_expired_certificate_is_recorded_in_the_run(folder: Path) -> None:
    expired = changed(["reference", "certificate", "due_date"], "2026-07-01")
    async with RunStore(folder / "runs.db") as store:
        refused = write(folder, expired)
        with pytest.raises(ConfigError) as caught:
            await start_run(load_procedure(refused), store, ManualClock(START_NS), operator="An",
                            declared={})  # fmt: skip
        assert "expired on 2026-07-01 (run date 2026-11-20)" in caught.value.problems[0]
        allowed = write(folder, expired | {"allow_expired_reference": True}, "allowed.yaml")
        run = await start_run(
            load_procedure(allowed), store, ManualClock(START_NS), operator="An", declared={}
        )
        row = await store.get(run)
        assert row is not None
        assert row.reference["certificate"]["expired"] is True
        assert row.notes == [
            "the reference's certificate REF-2026-0117 expired on 2026-07-01; used because the "
            "procedure sets allow_expired_reference"
        ]


async def test_a_certificate_issued_after_the_run_date_is_refused(folder: Path) -> None:
    future = changed(["reference", "certificate", "calibration_date"], "2026-12-01")
    future = changed(["reference", "certificate", "due_date"], "2027-12-01", future)
    async with RunStore(folder / "runs.db") as store:
        with pytest.raises(ConfigError) as caught:
            await start_run(load_procedure(write(folder, future)), store, ManualClock(START_NS),
                            operator="An", declared={})  # fmt: skip
    assert "is dated 2026-12-01, after the run date 2026-11-20" in caught.value.problems[0]


async def test_a_standard_the_registry_cannot_be_asked_about_is_a_note_then_a_refusal(
    folder: Path,
) -> None:
    data = changed(
        ["reference"],
        {"kind": "standard", "id": "CAL10V-01",
         "gateway": {"url": f"http://127.0.0.1:{free_port()}", "timeout_s": 2}},
    )  # fmt: skip
    data.pop("source", None)
    data["points"] = [{"nominal": 10, "range": 10}]
    data["settling"] = data["settling"] | {"on": "uut"}
    path = write(folder, data)
    problems, notes = check_procedure(path)
    assert problems == []
    assert len(notes) == 1 and "reference.id: the registry could not be asked" in notes[0]
    assert "the standard is checked when the run starts" in notes[0]
    async with RunStore(folder / "runs.db") as store:
        with pytest.raises(ConfigError) as caught:
            await start_run(load_procedure(path), store, ManualClock(START_NS), operator="An",
                            declared={})  # fmt: skip
    assert "reference.id: the registry cannot be asked" in caught.value.problems[0]


def test_hostile_files_are_refused_with_the_reason(folder: Path) -> None:
    huge = folder / "huge.yaml"
    huge.write_bytes(b"format: etalon.procedure/1\n" + b"#" * (300 * 1024))
    assert check_procedure(huge)[0] == [f"{huge}: larger than 262144 bytes"]
    latin = folder / "latin.yaml"
    latin.write_bytes(b"format: etalon.procedure/1\ntitle: \xe9talon\n")
    assert check_procedure(latin)[0][0].startswith(f"{latin}: not UTF-8 text")
    missing_agent = write(folder, PROCEDURE | {"agent": "nowhere.yaml"}, "lost.yaml")
    problems, _ = check_procedure(missing_agent)
    assert len(problems) == 1 and problems[0].endswith(
        f"agent: no agent config at {folder / 'nowhere.yaml'}"
    )
    # YAML bombs, deep nesting and aliases are the shared loader's (edge_agent.config_loader,
    # tested with the agent's config): a procedure is read by the same code.


def test_the_schema_is_published_and_strict() -> None:
    schema = procedure_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"format", "id", "agent", "uut", "reference", "points"}
    assert Procedure.model_validate(copy.deepcopy(PROCEDURE)).readings == 8


def test_etalon_check_refuses_a_bad_procedure_and_accepts_a_good_one(folder: Path) -> None:
    good = write(folder, PROCEDURE)
    bad = write(folder, changed(["points", 0, "nominal"], -30), "bad.yaml")
    ran = subprocess.run(
        etalon_command("check", str(good), str(bad)),
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    assert f"{good}: OK (calibration procedure config)" in ran.stdout
    assert re.search(
        rf"{re.escape(str(bad))}:\d+: points\[0\]\.nominal: calibrator/voltage_dc: -30 V refused: "
        r"below the limit of -20 V",
        ran.stderr,
    ), ran.stderr
    from app.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--lang", "vi", "check", str(good)]) == 0
    assert "hợp lệ (cấu hình quy trình hiệu chuẩn)" in out.getvalue()


def test_with_client_certificates_the_bench_needs_a_certificate_of_its_own(
    folder: Path, tmp_path: Path
) -> None:
    """The broker knows a client by its certificate's CN and lets it publish only under its own
    topics: a bench connecting with the agent's certificate (or anyone else's) would have its run
    dropped, so the procedure is refused, naming the field and the `etalon pki` command."""
    pki = LabPki(tmp_path / "pki", "hanoi", "gw-1", ["dc-bench-1", "dc-bench-1-cal", "other"])
    agent = yaml.safe_load((folder / "agent.yaml").read_text(encoding="utf-8"))
    agent["mqtt"] = {"port": 8883, "tls": pki.client_tls(pki.agents["dc-bench-1"])}
    write(folder, agent, "agent.yaml")

    problems, _ = check_procedure(write(folder, PROCEDURE))  # the agent's mqtt, as it is
    assert len(problems) == 1, problems
    assert "publish: the agent config's mqtt has the agent's own certificate" in problems[0]
    assert "the bench publishes as 'hanoi/dc-bench-1-cal'" in problems[0]
    assert "etalon pki issue agent --site hanoi --id dc-bench-1-cal" in problems[0]

    wrong = {"port": 8883, "tls": pki.client_tls(pki.agents["other"])}
    path = write(folder, changed(["publish"], {"mqtt": wrong}))
    problems, _ = check_procedure(path)
    assert len(problems) == 1, problems
    assert (
        "publish.mqtt.tls.cert_file: the certificate's identity (CN) is 'hanoi/other' but "
        "this process is 'hanoi/dc-bench-1-cal'"
    ) in problems[0]
    assert line_of(problems[0], path).strip().startswith("cert_file: ")

    own = {"port": 8883, "tls": pki.client_tls(pki.agents["dc-bench-1-cal"])}
    assert check_procedure(write(folder, changed(["publish"], {"mqtt": own}))) == ([], [])
    named = {"agent": "bench-a", "mqtt": own}  # another publisher name: its certificate is wrong
    problems, _ = check_procedure(write(folder, changed(["publish"], named)))
    assert len(problems) == 1 and "this process is 'hanoi/bench-a'" in problems[0], problems
    # Without client certificates (user name and password, or none) there is nothing to check.
    agent["mqtt"] = {"port": 1883}
    write(folder, agent, "agent.yaml")
    assert check_procedure(write(folder, PROCEDURE)) == ([], [])
