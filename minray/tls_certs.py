"""Certificates for TLS between machines: a cluster's own CA and a certificate per node.

``minray tls init`` (tls_cli.py) calls these; tests call them to make good and bad
certificates (expired, for another host, from another CA). Each node's certificate
serves both ends of a connection (server and client usage), as Ray's
``RAY_TLS_SERVER_CERT`` does, and names the node's addresses as subject alternative
names, which a client checks against the host it dialled. Keys are EC P-256 (fast
handshakes) and are written mode 0600. Needs the ``cryptography`` package
(``pip install 'minray[tls]'``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from typing import Any

INSTALL_HINT = "TLS certificates need the cryptography package: pip install 'minray[tls]'"

#: names every node certificate carries, so a cluster on one machine works too
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


def _crypto() -> Any:
    """The cryptography modules, or ImportError saying how to install them."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


def make_ca(name: str = "minray cluster CA", days: int = 3650) -> Issued:
    """A self-signed CA that signs the cluster's node certificates."""
    x509, hashes, serialization, ec, _, NameOID = _crypto()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key, serialization))


def make_node_cert(
    ca: Issued,
    hosts: list[str] | tuple[str, ...],
    days: int = 825,
    valid_from: datetime.datetime | None = None,
) -> Issued:
    """A certificate signed by ``ca`` for a node reachable at ``hosts`` (IP addresses or
    host names), usable as server and as client. ``valid_from`` (default: now) and
    ``days`` set its validity; tests pass a past date to make an expired one."""
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    if not hosts:
        raise ValueError("a node certificate needs at least one host name or IP address")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    start = valid_from or datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - datetime.timedelta(minutes=5))
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(x509, h) for h in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key, serialization))


def node_hosts(host: str | None) -> list[str]:
    """The names a node's certificate carries: ``host`` first, then the defaults."""
    names = [host] if host else []
    return names + [h for h in DEFAULT_HOSTS if h not in names]


def write_issued(issued: Issued, cert_path: str, key_path: str) -> None:
    """Write a certificate (mode 0644) and its key (mode 0600, also if the file existed)."""
    _write(cert_path, issued.cert_pem, 0o644)
    _write(key_path, issued.key_pem, 0o600)


def read_issued(cert_path: str, key_path: str) -> Issued:
    with open(cert_path, "rb") as c, open(key_path, "rb") as k:
        return Issued(c.read(), k.read())


def _write(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # an existing file keeps its mode otherwise
        os.write(fd, data)
    finally:
        os.close(fd)


def _san(x509: Any, host: str) -> Any:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: Any, serialization: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
