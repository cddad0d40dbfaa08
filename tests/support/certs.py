"""The deploy/ certificate maker (deploy/tls/make_certs.py), for tests that run TLS."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "tls" / "make_certs.py"


def make_certs() -> ModuleType:
    """deploy/tls/make_certs.py as a module: `make_all(out)` writes a CA and a certificate per
    service and for nats under `out/<name>/{tls.crt,tls.key,ca.crt}`."""
    module = sys.modules.get("voc_make_certs")
    if module is None:
        spec = importlib.util.spec_from_file_location("voc_make_certs", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["voc_make_certs"] = module
        spec.loader.exec_module(module)
    return module
