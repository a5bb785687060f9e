"""R17 (deploy) and R15 (key checks): `manage.py check --deploy` with production environment values.

`production_env()` is the environment a real deployment sets; other security tests load the
settings module with it (`production_settings()`) instead of guessing what production looks like.
"""

from __future__ import annotations

import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mailroom")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "mailroom.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://mailroom.example.com",
        "MAILROOM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": db_url if db_url.startswith("postgres") else "postgres://postgres@127.0.0.1:5432/mailroom",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/6",
        "REDIS_URL": "redis://127.0.0.1:6379/5",
        "EMAIL_URL": "smtp+tls://mailer:app-password@smtp.example.com:587",
        "SANDBOX_ENABLED": "false",
        "MAILROOM_VAR_DIR": str(tmp_path / "var"),
    }
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def production_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **overrides: str | None) -> dict[str, Any]:
    """Execute config/settings.py afresh under the production environment and return its values."""
    env = production_env(tmp_path, **overrides)
    # Only while the module runs: the rest of the test keeps this process's environment.
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            if key not in env and key not in ("PYTHONPATH", "VIRTUAL_ENV"):
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return runpy.run_path(str(BASE_DIR / "config" / "settings.py"))


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    result = check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_missing_encryption_key_fails_the_system_check(tmp_path):
    result = check_deploy(production_env(tmp_path, MAILROOM_ENCRYPTION_KEYS=None))
    assert result.returncode != 0
    assert "mailroom.E001" in result.stderr


def test_an_invalid_encryption_key_fails_the_system_check(tmp_path):
    result = check_deploy(production_env(tmp_path, MAILROOM_ENCRYPTION_KEYS="not-a-fernet-key"))
    assert result.returncode != 0
    assert "mailroom.E002" in result.stderr


def test_an_invalid_key_fails_even_the_plain_startup_check(tmp_path):
    # Not only --deploy: `manage.py check` (run by runserver and migrate) refuses to start.
    env = production_env(tmp_path, MAILROOM_ENCRYPTION_KEYS="short")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "mailroom.E002" in result.stderr


def test_the_encryption_key_can_come_from_a_mounted_file(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    env = production_env(tmp_path, MAILROOM_ENCRYPTION_KEYS=None, MAILROOM_ENCRYPTION_KEYS_FILE=str(key_file))
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "issue"),
    [
        ({"CELERY_BROKER_URL": None}, "mailroom.W001"),
        ({"DATABASE_URL": "sqlite:////tmp/mailroom-deploy-test.sqlite3"}, "mailroom.W002"),
        ({"SANDBOX_ENABLED": "true"}, "mailroom.W003"),
        ({"REDIS_URL": None}, "mailroom.W004"),
    ],
)
def test_development_defaults_fail_the_deploy_check(tmp_path, overrides, issue):
    result = check_deploy(production_env(tmp_path, **overrides))
    assert result.returncode != 0
    assert issue in result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        production_settings(tmp_path, monkeypatch, SECRET_KEY=None)
