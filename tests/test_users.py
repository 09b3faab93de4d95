"""Named accounts for the operators' console (issue 10, point 2, the accounts): `users add NAME --role`, an
argon2id hash and never the password, roles, and every change in the audit log (who, what, when, why)."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from adapter.cli import main
from adapter.store.db import make_engine, upgrade
from adapter.store.users import Role, UserError, add, authenticate
from tests.conftest import drop_database, new_database_url, write_config

PASSWORD = "correct horse battery"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = new_database_url(tmp_path)
    path = write_config(tmp_path / "config.toml", url, 8999)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield path
    drop_database(url)


def cli(config: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--config", str(config), *args], input=stdin, prog_name="loket-adapter")
    return r.exit_code, r.stdout, r.stderr


def db_url(config: Path) -> str:
    import tomllib

    return str(tomllib.loads(config.read_text())["store"]["url"])


def test_add_then_log_in_with_the_password_and_the_role(config: Path) -> None:
    assert cli(config, "users", "add", "jansen", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")[
        :2
    ] == (
        0,
        "user jansen added (operator)\n",
    )
    engine = make_engine(db_url(config))
    try:
        assert authenticate(engine, "jansen", PASSWORD) == Role.OPERATOR
        assert authenticate(engine, "jansen", PASSWORD + "x") is None
        assert authenticate(engine, "nobody", PASSWORD) is None
        with engine.connect() as conn:
            (stored,) = conn.execute(text("SELECT password_hash FROM users")).one()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored  # a hash, never the password
    finally:
        engine.dispose()


def test_the_prompt_asks_twice_and_refuses_a_mismatch(config: Path) -> None:
    code, _, err = cli(config, "users", "add", "pietersen", "--role", "beheerder", stdin=f"{PASSWORD}\nother one\n")
    assert code != 0 and "do not match" in err.lower() + _
    code, out, _ = cli(config, "users", "add", "pietersen", "--role", "beheerder", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0 and out.endswith("user pietersen added (beheerder)\n")


def test_role_password_and_remove_are_audited_with_who_and_what(config: Path) -> None:
    cli(config, "users", "add", "de-vries", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n")
    assert cli(config, "users", "role", "de-vries", "beheerder")[:2] == (0, "de-vries is beheerder now\n")
    assert cli(config, "users", "passwd", "de-vries", "--password-stdin", stdin="another long secret\n")[0] == 0
    code, out, _ = cli(config, "users", "list")
    assert code == 0 and out.splitlines()[1].split()[:2] == ["de-vries", "beheerder"]
    assert "argon2" not in out and PASSWORD not in out
    assert cli(config, "users", "remove", "de-vries")[:2] == (0, "user de-vries removed\n")
    code, out, _ = cli(config, "users", "audit")
    rows = [line.split(None, 2)[2] for line in out.splitlines()[1:]]  # after the date and time
    assert [r.split()[0] for r in rows] == [f"cli:{getpass.getuser()}"] * 4
    assert [" ".join(r.split()[1:3]) for r in rows] == ["user removed", "password set", "role set", "user added"]
    assert "role beheerder" in rows[2] and "role operator" in rows[3]
    engine = create_engine(db_url(config))
    with engine.connect() as conn:
        reasons = [r for (r,) in conn.execute(text("SELECT reason FROM audit_log"))]
    engine.dispose()
    assert not any(r and ("secret" in r or PASSWORD in r) for r in reasons)  # passwords never in the log


@pytest.mark.parametrize(
    ("args", "stdin", "line"),
    [
        (("users", "add", "Jan Jansen", "--role", "operator"), PASSWORD, "user name 'Jan Jansen': lower-case"),
        (
            ("users", "add", "kort", "--role", "operator", "--password-stdin"),
            "short\n",
            "a password needs at least 12 characters",
        ),
        (("users", "role", "nobody", "beheerder"), None, "no user nobody"),
        (("users", "remove", "nobody"), None, "no user nobody"),
    ],
)
def test_a_wrong_account_command_is_one_line_and_exit_1(
    config: Path, args: tuple[str, ...], stdin: str | None, line: str
) -> None:
    code, _, err = cli(config, *args, stdin=stdin)
    assert code == 1 and err.startswith(f"error: {line}"), err
    assert len(err.splitlines()) == 1


def test_a_second_account_of_the_same_name_is_refused(config: Path) -> None:
    engine = make_engine(db_url(config))
    try:
        add(engine, "smit", Role.OPERATOR, PASSWORD, actor="test")
        with pytest.raises(UserError, match="user smit exists"):
            add(engine, "smit", Role.BEHEERDER, PASSWORD, actor="test")
        assert authenticate(engine, "smit", PASSWORD) == Role.OPERATOR  # unchanged
    finally:
        engine.dispose()


def test_five_wrong_passwords_lock_the_account_for_a_while(config: Path) -> None:
    from adapter.store.users import MAX_FAILED_LOGINS, set_password

    engine = make_engine(db_url(config))
    try:
        add(engine, "jansen", Role.OPERATOR, PASSWORD, actor="test")
        for _ in range(MAX_FAILED_LOGINS - 1):
            assert authenticate(engine, "jansen", "a wrong password!") is None
        assert authenticate(engine, "jansen", PASSWORD) is Role.OPERATOR  # a success resets the count
        for _ in range(MAX_FAILED_LOGINS):
            assert authenticate(engine, "jansen", "a wrong password!") is None
        assert authenticate(engine, "jansen", PASSWORD) is None  # locked: even the right password
        with engine.begin() as conn:
            action = conn.execute(text("SELECT action, target, reason FROM audit_log ORDER BY id DESC")).first()
            assert tuple(action) == ("account locked", "jansen", "5 wrong passwords in a row; 15 minutes")
            conn.execute(text("UPDATE users SET locked_until = :t"), {"t": "2000-01-01 00:00:00"})  # time passed
        assert authenticate(engine, "jansen", PASSWORD) is Role.OPERATOR
        for _ in range(MAX_FAILED_LOGINS):
            authenticate(engine, "jansen", "a wrong password!")
        set_password(engine, "jansen", "a new password for jansen", actor="admin")  # lifts the lock
        assert authenticate(engine, "jansen", "a new password for jansen") is Role.OPERATOR
    finally:
        engine.dispose()
