"""A throwaway X.509 PKI for signing tests, made with ``cryptography``.

:func:`make_pki` writes, into one directory that also serves as fedmsg's
``ssldir`` (``<name>.crt`` and ``<name>.key`` side by side):

- ``ca.crt``: the trusted root CA; ``crl.pem``: its CRL, revoking ``revoked.crt``;
- ``signer.crt``/``signer.key``: a good signing certificate issued by the CA;
- ``revoked.crt``/``revoked.key``: issued by the CA, then revoked;
- ``expired.crt``/``expired.key``: issued by the CA, validity over a day ago;
- ``rogue-ca.crt``, ``rogue.crt``/``rogue.key``: a second CA nobody trusts and
  a certificate it issued, with the same subject as the good signer;
- ``intermediate.crt``, ``chained.crt``/``chained.key``: an intermediate CA
  under the root and a certificate it issued; ``bundle.crt`` holds root and
  intermediate, as a CA bundle does.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, in memory."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class Pki:
    """Paths of everything :func:`make_pki` wrote."""

    directory: Path
    ca_cert: Path
    crl: Path
    signer_cert: Path
    signer_key: Path
    revoked_cert: Path
    revoked_key: Path
    expired_cert: Path
    expired_key: Path
    rogue_ca_cert: Path
    rogue_cert: Path
    rogue_key: Path
    intermediate_cert: Path
    chained_cert: Path
    chained_key: Path
    bundle: Path
    #: the CA itself, for tests that issue more certificates or CRLs
    ca: Issued


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notifier Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue(common_name: str, issuer: Issued | None = None, *, ca: bool = False,
          not_before: datetime.datetime | None = None,
          not_after: datetime.datetime | None = None,
          key: rsa.RSAPrivateKey | None = None) -> Issued:
    """Issue a certificate for ``common_name``, self-signed when ``issuer`` is None."""
    key = key or new_key()
    now = datetime.datetime.now(datetime.UTC)
    subject = _name(common_name)
    signing_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - _DAY)
               .not_valid_after(not_after or now + 30 * _DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   signing_key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


def make_crl(issuer: Issued, revoked: list[x509.Certificate], *,
             next_update: datetime.datetime | None = None) -> x509.CertificateRevocationList:
    """A CRL signed by ``issuer`` that revokes ``revoked``."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer.cert.subject)
               .last_update(now - _DAY)
               .next_update(next_update or now + 7 * _DAY))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(now - _DAY).build())
    return builder.sign(issuer.key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def _write_pair(directory: Path, name: str, issued: Issued) -> tuple[Path, Path]:
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert_pem(issued.cert))
    key.write_bytes(key_pem(issued.key))
    key.chmod(0o600)
    return crt, key


def make_pki(directory: Path) -> Pki:
    """Generate the whole PKI described in the module docstring into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca = issue("Notifier Test CA", ca=True)
    rogue_ca = issue("Notifier Test CA", ca=True)  # same name, different key
    intermediate = issue("Notifier Test Intermediate CA", ca, ca=True)
    signer = issue("shell-vm.example.org", ca)
    revoked = issue("revoked.example.org", ca)
    expired = issue("expired.example.org", ca, not_before=now - 30 * _DAY,
                    not_after=now - _DAY)
    rogue = issue("shell-vm.example.org", rogue_ca)
    chained = issue("chained.example.org", intermediate)

    ca_cert, _ = _write_pair(directory, "ca", ca)
    rogue_ca_cert, _ = _write_pair(directory, "rogue-ca", rogue_ca)
    intermediate_cert, _ = _write_pair(directory, "intermediate", intermediate)
    crl = directory / "crl.pem"
    crl.write_bytes(crl_pem(make_crl(ca, [revoked.cert])))
    bundle = directory / "bundle.crt"
    bundle.write_bytes(cert_pem(ca.cert) + cert_pem(intermediate.cert))
    signer_cert, signer_key = _write_pair(directory, "signer", signer)
    revoked_cert, revoked_key = _write_pair(directory, "revoked", revoked)
    expired_cert, expired_key = _write_pair(directory, "expired", expired)
    rogue_cert, rogue_key = _write_pair(directory, "rogue", rogue)
    chained_cert, chained_key = _write_pair(directory, "chained", chained)
    return Pki(directory=directory, ca_cert=ca_cert, crl=crl, signer_cert=signer_cert,
               signer_key=signer_key, revoked_cert=revoked_cert, revoked_key=revoked_key,
               expired_cert=expired_cert, expired_key=expired_key,
               rogue_ca_cert=rogue_ca_cert, rogue_cert=rogue_cert, rogue_key=rogue_key,
               intermediate_cert=intermediate_cert, chained_cert=chained_cert,
               chained_key=chained_key, bundle=bundle, ca=ca)


def server_tls(directory: Path, ca_name: str = "Notifier Test CA") -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1, and the file of the CA that issued its certificate.

    Writes ``server.crt``, ``server.key`` and ``ca.crt`` into ``directory``.
    """
    ca = issue(ca_name, ca=True)
    key = new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + _DAY)
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    (directory / "server.crt").write_bytes(cert_pem(cert))
    (directory / "server.key").write_bytes(key_pem(key))
    (directory / "ca.crt").write_bytes(cert_pem(ca.cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    return context, directory / "ca.crt"
