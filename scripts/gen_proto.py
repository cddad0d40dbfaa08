"""Generate the Python stubs for every .proto under proto/ into OUT (default libs/contracts/src).

Deterministic: the same protos and grpcio-tools version give byte-identical files, so `make lint`
can regenerate into a temp dir and diff against the committed stubs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "libs/contracts/src"
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    code = protoc.main(args)
    if code != 0:
        return int(code)
    # Packages need __init__.py for mypy and wheels; generated dirs get empty ones.
    for proto in protos:
        pkg = out / Path(proto).parent
        for parent in [pkg, *pkg.relative_to(out).parents]:
            if str(parent) == ".":
                continue
            init = out / parent if not parent.is_absolute() else parent
            (init / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
