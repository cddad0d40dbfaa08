"""The NATS and gRPC credential files are checked at start (settings review): a file that is not
what its variable holds is one line naming the variable, not "Failed to bind" at the first gRPC
server or a NATS connect that never returns (nats-py loops on a .creds file without a JWT).
Good files are accepted, and an nkey seed the check accepts logs in to a real nats-server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nats
import nkeys
import pytest
from nats.errors import NoServersError

from tests.support.certs import make_certs
from voc_cli.nats import NatsServer
from voc_profile.settings import Settings as ProfileSettings


def user_seed() -> bytes:
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def creds_text(seed: bytes, jwt: str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln") -> str:
    """A .creds file as `nsc` writes one (the JWT is the server's to check, not ours)."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed.decode()}\n"
        "------END USER NKEY SEED------\n"
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    authority = make_certs().Authority()
    own = authority.write(tmp_path / "profile", authority.issue("profile", ["profile"]))
    other = authority.write(tmp_path / "other", authority.issue("other", ["other"]))
    seed = user_seed()
    paths = {
        "cert": own / "tls.crt",
        "key": own / "tls.key",
        "ca": own / "ca.crt",
        "other_key": other / "tls.key",
        "junk": tmp_path / "junk.pem",
        "seed": tmp_path / "user.nk",
        "creds": tmp_path / "user.creds",
        "creds_without_jwt": tmp_path / "no-jwt.creds",
        "encrypted_key": tmp_path / "encrypted.key",
    }
    paths["junk"].write_text("not a certificate\n")
    paths["seed"].write_bytes(seed + b"\n")
    paths["creds"].write_text(creds_text(seed))
    paths["creds_without_jwt"].write_text(creds_text(seed).split("\n", 3)[3])
    paths["encrypted_key"].write_text(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        "MIIBvTBXBgkqhkiG9w0BBQ0w\n"
        "-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    return paths


def test_good_files_are_accepted(files: dict[str, Path]) -> None:
    settings = ProfileSettings(
        grpc_tls_cert=files["cert"],
        grpc_tls_key=files["key"],
        grpc_tls_ca=files["ca"],
        nats_tls_ca=files["ca"],
        nats_tls_cert=files["cert"],
        nats_tls_key=files["key"],
        nats_nkey_seed=files["seed"],
    )
    assert settings.grpc_tls() is not None
    assert ProfileSettings(nats_creds=files["creds"]).nats_creds == files["creds"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"grpc_tls_cert": "cert", "grpc_tls_key": "junk"}, "VOC_GRPC_TLS_KEY: no PEM private key in"),
        ({"grpc_tls_cert": "junk", "grpc_tls_key": "key"}, "VOC_GRPC_TLS_CERT: no PEM certificate in"),
        ({"grpc_tls_cert": "cert", "grpc_tls_key": "other_key"}, "is not the private key of"),
        (
            {"grpc_tls_cert": "cert", "grpc_tls_key": "encrypted_key"},
            "is encrypted; give the key unencrypted",
        ),
        ({"grpc_tls_ca": "junk"}, "VOC_GRPC_TLS_CA: no PEM certificate in"),
        ({"nats_tls_ca": "key"}, "VOC_NATS_TLS_CA: no PEM certificate in"),
        ({"nats_tls_cert": "key", "nats_tls_key": "key"}, "VOC_NATS_TLS_CERT: no PEM certificate in"),
        ({"nats_nkey_seed": "junk"}, "VOC_NATS_NKEY_SEED: not an nkey seed"),
        ({"nats_nkey_seed": "creds"}, "VOC_NATS_NKEY_SEED: not an nkey seed"),
        ({"nats_creds": "seed"}, "VOC_NATS_CREDS: not a NATS .creds file"),
        ({"nats_creds": "creds_without_jwt"}, "VOC_NATS_CREDS: not a NATS .creds file"),
    ],
)
def test_a_file_that_is_not_what_its_variable_holds_is_refused_naming_it(
    files: dict[str, Path], given: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ProfileSettings(**{name: files[key] for name, key in given.items()})


async def test_a_seed_it_accepts_logs_in_to_a_real_server_and_another_is_refused(
    files: dict[str, Path], tmp_path: Path
) -> None:
    seed = files["seed"].read_bytes().strip()
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    config = tmp_path / "nats.conf"
    config.write_text(f'authorization {{\n  users = [ {{ nkey: "{public}" }} ]\n}}\n')
    server = NatsServer(store_dir=tmp_path / "js", port=0, name="voc-nkey", config=config)
    server.start()
    try:
        options = ProfileSettings(nats_nkey_seed=files["seed"]).nats_security().connect_options([server.url])
        client = await nats.connect(servers=[server.url], allow_reconnect=False, connect_timeout=3, **options)
        await client.flush()
        assert client.is_connected
        await client.drain()
        # Another user's seed passes the check (it is a seed) and the server refuses it.
        files["seed"].write_bytes(user_seed())
        options = ProfileSettings(nats_nkey_seed=files["seed"]).nats_security().connect_options([server.url])
        with pytest.raises((NoServersError, nats.errors.Error)):
            await nats.connect(
                servers=[server.url],
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=3,
                **options,
            )
    finally:
        server.stop()
