"""A certificate authority and broker certificates for Kafka's SASL_SSL listener.

`tiaojie kafka certs` writes them for a deployment (docker-compose runs it in a one-shot
container); the local broker gets its own at first start. Clients verify the broker
against `ca.pem`; the broker reads `broker.pem` (its PKCS#8 key, then its certificate and
the CA: Kafka's PEM key store format). Keys never leave the folder (mode 0750; the CA's
key 0600, the broker's key store 0640, for a broker running under another account in the
group).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
BROKER_FILE = "broker.pem"


@dataclass(frozen=True)
class BrokerCertificates:
    """Where a deployment's CA and broker key store are."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / CA_FILE

    @property
    def broker(self) -> Path:
        return self.folder / BROKER_FILE

    @property
    def complete(self) -> bool:
        return self.ca.exists() and self.broker.exists()


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tiaojie"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def write_certificates(
    folder: Path, hosts: list[str], *, days: int = 825, owner: int | None = None
) -> BrokerCertificates:
    """Create a CA (unless the folder has one) and a broker certificate for `hosts` (DNS
    names or IP addresses, all in its subjectAltName), signed by that CA. `owner` (a uid)
    hands the broker's files to the account the broker runs as, e.g. a container's."""
    if not hosts:
        raise ValueError("at least one host name or address is needed")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o750)
    certs = BrokerCertificates(folder)
    now = dt.datetime.now(dt.UTC)
    ca_key_path = folder / CA_KEY_FILE
    if certs.ca.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(certs.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
    else:
        ca_key = _key()
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Tiaojie broker CA"))
            .issuer_name(_name("Tiaojie broker CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, _pem_key(ca_key), 0o600)
        _write(certs.ca, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)

    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    # The broker may run as another user (a container's): readable by the group, not others.
    _write(certs.broker, _pem_key(key) + chain, 0o640)
    if owner is not None:
        for path in (folder, certs.broker, certs.ca):
            os.chown(path, owner, -1)
    return certs
