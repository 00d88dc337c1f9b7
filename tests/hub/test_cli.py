"""``etalon hub ...``: the institute's commands on a real PostgreSQL, in both languages, and
their refusals of bad input (named option or field, exit status, nothing stored)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from app.cli import main
from ledger import SigningKey
from tests.support.hub import hub_settings, staff_env
from tests.support.postgres import PostgresServer
from tests.support.processes import write_yaml


@pytest.fixture
def config(
    tmp_path: Path, postgres: PostgresServer, hub_database: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    for k, v in staff_env().items():
        monkeypatch.setenv(k, v)
    return write_yaml(tmp_path / "hub.yaml", hub_settings(tmp_path, postgres, hub_database))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def key_file(tmp_path: Path, name: str = "lab.pub") -> Path:
    path = tmp_path / name
    path.write_text(SigningKey.generate().public_key.to_text() + "\n")
    return path


def test_migrate_enrol_list_revoke(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = str(config)
    assert run(capsys, "hub", "migrate", "-c", c, "--check")[0] == 1  # pending
    code, out, _ = run(capsys, "hub", "migrate", "-c", c)
    assert code == 0 and "001_initial" in out
    assert run(capsys, "hub", "migrate", "-c", c, "--check")[0] == 0
    code, out, _ = run(
        capsys,
        "hub",
        "enrol",
        "-c",
        c,
        "--lab",
        "lab-a",
        "--key",
        str(key_file(tmp_path)),
        "--name",
        "Phòng đo lường A",
        "--province",
        "Huế",
    )
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("etalon-") or len(token) >= 32
    code, out, err = run(
        capsys,
        "--lang",
        "vi",
        "hub",
        "enrol",
        "-c",
        c,
        "--lab",
        "lab-b",
        "--key",
        str(key_file(tmp_path, "b.pub")),
    )
    assert code == 0 and "đã đăng ký phòng thí nghiệm lab-b" in out, err
    code, out, _ = run(capsys, "hub", "labs", "-c", c, "--json")
    labs = {row["id"]: row for row in json.loads(out)}
    assert labs["lab-a"]["name"] == "Phòng đo lường A" and labs["lab-a"]["province"] == "Huế"
    code, out, _ = run(capsys, "hub", "revoke", "-c", c, "--lab", "lab-a", "--reason", "closed")
    assert code == 0
    code, _, err = run(capsys, "hub", "revoke", "-c", c, "--lab", "lab-a", "--reason", "again")
    assert code != 0 and "revoked already" in err
    code, out, _ = run(capsys, "--lang", "vi", "hub", "labs", "-c", c)
    assert code == 0 and "thu hồi" in out and "lab-b" in out
    code, out, _ = run(capsys, "hub", "verify-audit", "-c", c)
    assert code == 0, out


def test_links(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(config)
    run(capsys, "hub", "migrate", "-c", c)
    run(capsys, "hub", "enrol", "-c", c, "--lab", "nmi", "--key", str(key_file(tmp_path)))
    code, out, err = run(
        capsys,
        "hub",
        "link",
        "add",
        "-c",
        c,
        "--from",
        "nmi/N1",
        "--kcdb",
        "CCEM-K4",
        "--valid-until",
        "2030-01-01",
    )
    assert code == 0, err
    code, out, _ = run(capsys, "hub", "link", "list", "-c", c, "--json")
    (link,) = json.loads(out)
    assert (link["to_kind"], link["to_ref"]) == ("kcdb_comparison", "CCEM-K4")
    code, out, _ = run(
        capsys, "hub", "link", "withdraw", "-c", c, "--id", str(link["id"]), "--reason", "typo"
    )
    assert code == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["link", "add", "--from", "nmiN1", "--kcdb", "X"], "--from: give LAB/STANDARD"),
        (["link", "add", "--from", "nmi/N1", "--to", "lab-b"], "--to: give LAB/STANDARD"),
        (
            ["link", "add", "--from", "nmi/N1", "--national", "X", "--valid-until", "soon"],
            "--valid-until",
        ),
        (["link", "add", "--from", "nmi/N1", "--to", "nmi/N1"], "traceable to itself"),
        (["link", "add", "--from", "nmi/N\x1b[31m", "--kcdb", "X"], "from_standard"),
        (["link", "add", "--from", "ghost/N1", "--kcdb", "X"], "ghost is not enrolled"),
        (["enrol", "--lab", "bad lab!", "--key", "KEY"], "lab"),
        (["enrol", "--lab", "lab-x", "--key", "/nonexistent/key.pub"], "cannot read it"),
        (["enrol", "--lab", "lab-x", "--key", "NOTAKEY"], "not an Ed25519 public key"),
        (["revoke", "--lab", "ghost", "--reason", "x"], "ghost is not enrolled"),
        (["revoke", "--lab", "nmi", "--reason", ""], "--reason"),
        (["token", "--lab", "ghost"], "ghost is not enrolled"),
    ],
)
def test_bad_arguments_are_refused(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    c = str(config)
    run(capsys, "hub", "migrate", "-c", c)
    run(capsys, "hub", "enrol", "-c", c, "--lab", "nmi", "--key", str(key_file(tmp_path)))
    bad = tmp_path / "bad.pub"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    args = [str(key_file(tmp_path, "x.pub")) if a == "KEY" else a for a in args]
    args = [str(bad) if a == "NOTAKEY" else a for a in args]
    action, *rest = args
    if action == "link":
        command = ["hub", "link", rest[0], "-c", c, *rest[1:]]
    else:
        command = ["hub", action, "-c", c, *rest]
    code, out, err = run(capsys, *command)
    assert code == 1, (out, err)
    assert expected in err, err
    with psycopg.connect(
        f"{_conninfo(config)}", password=__import__("os").environ["ETALON_TEST_PG_PASSWORD"]
    ) as conn:
        assert conn.execute("SELECT count(*) FROM trace_links").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM labs").fetchone() == (1,)


@pytest.mark.parametrize(
    ("args", "says", "english"),
    [
        (["revoke", "--lab", "ghost", "--reason", "x"], "ghost chưa được đăng ký", "enrolled"),
        (["token", "--lab", "ghost"], "ghost chưa được đăng ký", "enrolled"),
        (["enrol", "--lab", "nmi", "--key", "KEY"], "nmi đã được đăng ký rồi", "already"),
        (
            ["link", "add", "--from", "nmiN1", "--kcdb", "X"],
            "--from: cần dạng LAB/STANDARD",
            "give",
        ),
        (
            ["link", "add", "--from", "nmi/N1", "--national", "X", "--valid-until", "soon"],
            "'soon' không phải ngày dạng YYYY-MM-DD",
            "is not a date",
        ),
        (["link", "add", "--from", "ghost/N1", "--kcdb", "X"], "ghost chưa được đăng ký", "not"),
        (["link", "withdraw", "--id", "99", "--reason", "x"], "không có liên kết chuẩn 99", "no "),
        (["enrol", "--lab", "lab-x", "--key", "/nonexistent/key.pub"], "không đọc được", "cannot"),
        (["enrol", "--lab", "lab-x", "--key", "NOTAKEY"], "không phải khóa công khai", "not an"),
    ],
)
def test_refusals_in_vietnamese(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    says: str,
    english: str,
) -> None:
    """``--lang vi``: the hub's refusals come from the catalogue, not English (same exit 1)."""
    c = str(config)
    run(capsys, "hub", "migrate", "-c", c)
    run(capsys, "hub", "enrol", "-c", c, "--lab", "nmi", "--key", str(key_file(tmp_path)))
    bad = tmp_path / "bad.pub"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    args = [str(key_file(tmp_path, "x.pub")) if a == "KEY" else a for a in args]
    args = [str(bad) if a == "NOTAKEY" else a for a in args]
    action, *rest = args
    where = ["link", rest.pop(0)] if action == "link" else [action]
    code, out, err = run(capsys, "--lang", "vi", "hub", *where, "-c", c, *rest)
    assert code == 1, (out, err)
    message = err.removeprefix("etalon hub: ").split(": [Errno")[0]
    assert says in message, err
    assert english not in message, err


def test_an_unmigrated_database_is_named_in_vietnamese(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--lang", "vi", "hub", "labs", "-c", str(config))
    assert code == 1 and "chưa được chuyển đổi" in err and "etalon hub migrate" in err, err
    code, _, err = run(capsys, "hub", "labs", "-c", str(config))
    assert code == 1 and "is not migrated" in err, err


def _conninfo(config: Path) -> str:
    import yaml

    return str(yaml.safe_load(config.read_text())["database"]["url"])


def test_config_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "hub", "labs")
    assert code == 2 and "-c" in err
    bad = write_yaml(
        tmp_path / "hub.yaml",
        {
            "database": {"url": "host=127.0.0.1 dbname=hub password=secret"},
            "key_file": str(tmp_path / "k"),
        },
    )
    code, _, err = run(capsys, "hub", "labs", "-c", str(bad))
    assert code == 1 and "database.url" in err and "password" in err and "secret" not in err
    code, _, err = run(capsys, "--lang", "vi", "hub", "labs", "-c", str(bad))
    assert code == 1 and "cấu hình không hợp lệ" in err
    unreachable = write_yaml(
        tmp_path / "down.yaml",
        {
            "database": {
                "url": "host=127.0.0.1 port=1 dbname=hub user=hub",
                "connect_timeout_s": 2,
            },
            "key_file": str(tmp_path / "k"),
        },
    )
    code, _, err = run(capsys, "hub", "labs", "-c", str(unreachable))
    assert code == 5 and "cannot connect" in err, err


def test_schema_guards(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hub that may not migrate refuses an older schema; an edited shipped migration and a
    database newer than the software are refused by name."""
    import asyncio

    import yaml

    from core.errors import StoreError
    from hub.config import HubConfig
    from hub.service import prepare_database

    settings = yaml.safe_load(config.read_text())
    settings["database"]["migrate_on_start"] = False
    frozen = HubConfig.model_validate(settings)
    with pytest.raises(StoreError, match="lacks migrations 001_initial"):
        asyncio.run(prepare_database(frozen))
    assert run(capsys, "hub", "migrate", "-c", str(config))[0] == 0
    asyncio.run(prepare_database(frozen))  # up to date: starts
    url = settings["database"]["url"]
    password = __import__("os").environ["ETALON_TEST_PG_PASSWORD"]
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1")
    code, _, err = run(capsys, "hub", "migrate", "-c", str(config))
    assert code == 5 and "differs from the one this database applied" in err, err
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET sha256 = %s WHERE version = 1", (_sha(),))
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x', 0)")
    code, _, err = run(capsys, "hub", "labs", "-c", str(config))
    assert code == 5 and "newer than this software" in err, err


def _sha() -> str:
    from hub.db import shipped_migrations

    return shipped_migrations()[0].sha256
