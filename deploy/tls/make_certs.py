"""Make a private CA and the TLS certificates of deploy/compose (and of the tests): one for each
service (its gRPC server, and the client certificate it shows for mTLS) and one for the NATS
nodes (clients and cluster routes). Kubernetes gets the same layout from cert-manager
(deploy/k8s/base/certificates.example.yaml).

    python deploy/tls/make_certs.py deploy/compose/certs

writes `<out>/<name>/{tls.crt,tls.key,ca.crt}` (the layout of a cert-manager Secret) for
feedback, profile, actions, notify and nats; keys are 0600, directories 0700. Needs only the
`cryptography` package (in the project's environment). Certificates last 397 days: rotate them
with the same command (services read them at start).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("feedback", "profile", "actions", "notify")
NAMESPACES = ("voc", "voc-staging")
DAYS = 397


@dataclass(frozen=True)
class Issued:
    key_pem: bytes
    cert_pem: bytes


def service_names(service: str) -> list[str]:
    """Every name a client may dial a service by: compose (`profile`), the headless Service of
    the gRPC targets (`profile-grpc`) and their cluster DNS names."""
    names = [service, f"{service}-grpc", "localhost", "127.0.0.1"]
    for ns in NAMESPACES:
        names += [f"{service}-grpc.{ns}.svc", f"{service}-grpc.{ns}.svc.cluster.local"]
    return names


def nats_names() -> list[str]:
    names = ["nats-1", "nats-2", "nats-3", "localhost", "127.0.0.1"]
    for ns in NAMESPACES:
        names += [f"*.nats-headless.{ns}.svc", f"*.nats-headless.{ns}.svc.cluster.local"]
    return [*names, "*.nats-headless", "nats-headless"]


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Frontline VoC"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Authority:
    """A private CA that signs server-and-client certificates."""

    def __init__(self, common_name: str = "Frontline VoC internal CA", days: int = DAYS) -> None:
        now = dt.datetime.now(dt.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.days = days

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, names: Iterable[str]) -> Issued:
        """A certificate for `names` (DNS names or IP addresses), usable as server and client."""
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return Issued(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))

    def write(self, directory: Path, issued: Issued) -> Path:
        """`directory/{tls.crt,tls.key,ca.crt}`, private to this user."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, data in (
            ("tls.crt", issued.cert_pem),
            ("tls.key", issued.key_pem),
            ("ca.crt", self.cert_pem),
        ):
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        return directory


def make_all(out: Path, authority: Authority | None = None) -> Authority:
    """The CA and a certificate for each service and for NATS, under `out`."""
    ca = authority or Authority()
    for service in SERVICES:
        ca.write(out / service, ca.issue(service, service_names(service)))
    ca.write(out / "nats", ca.issue("nats", nats_names()))
    return ca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="e.g. deploy/compose/certs")
    args = parser.parse_args()
    os.umask(0o077)
    make_all(args.out)
    print(f"CA and certificates for {', '.join(SERVICES)} and nats written to {args.out}")


if __name__ == "__main__":
    main()
