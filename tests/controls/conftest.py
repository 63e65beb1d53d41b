"""Controls tests sign audit logs with a throwaway key, never the user's ~/.alignlab/guard/audit.key."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def audit_key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("audit-key")


@pytest.fixture(autouse=True)
def _audit_key(monkeypatch, audit_key_dir):
    monkeypatch.setenv("ALIGNLAB_AUDIT_KEY", str(audit_key_dir / "audit.key"))
