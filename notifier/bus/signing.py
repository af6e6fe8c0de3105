"""X.509 message signatures, compatible with fedmsg's ``x509`` crypto backend.

A signed envelope carries three more fields::

    "crypto": "x509",
    "signature": "<base64 of the RSA signature>\\n",
    "certificate": "<base64 of the sender's PEM certificate>\\n",

The signature is RSA PKCS#1 v1.5 with SHA-1 (what fedmsg uses) over the
canonical JSON (:func:`~notifier.bus.envelope.canonical_json`) of the envelope
without ``signature`` and ``certificate`` but with ``crypto``. Both base64
fields are cut into lines of 76 characters and end with a newline, as fedmsg
writes them.

A message is valid when its certificate chains up to a self-signed CA in
``[crypto] ca_cert`` (a bundle may add intermediates), every certificate on
the way is within its validity dates, none is revoked by the CRL in
``[crypto] crl`` (whose own signature is checked against the CA), and the
signature matches the envelope. Anything added or changed after signing
makes the signature fail.

fedmsg's routing policy (which certificate may send on which topic) is not
applied here.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import Config
from ..errors import ConfigError, SignatureError
from .envelope import canonical_json

_CREDENTIALS = ("signature", "certificate")
_LINE = 76
_MAX_CHAIN = 8
_CACHE_SIZE = 1024
_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class _MaterialError(SignatureError):
    """A certificate, key or CRL file is unreadable or unusable; ``key`` names its setting."""

    def __init__(self, key: str, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.key = key
        self.path = path
        self.reason = reason


def _wrap(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + _LINE] for i in range(0, len(text), _LINE)) + "\n"


def _unwrap(name: str, value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"the {name!r} field is not valid base64: {exc}") from exc


def signed_bytes(envelope: dict[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON without signature and certificate."""
    stripped = {k: v for k, v in envelope.items() if k not in _CREDENTIALS}
    return canonical_json(stripped).encode("ascii")


def describe(cert: x509.Certificate) -> str:
    """A certificate's subject, for messages: ``CN=host.example.org,O=Example``."""
    return cert.subject.rfc4514_string()


def _where(config: Config) -> str:
    return ", ".join(config.sources) or "the configuration"


def _read(key: str, path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise _MaterialError(key, path, f"cannot read the {what}: {exc.strerror}") from exc


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _check_dates(cert: x509.Certificate, now: datetime.datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise SignatureError(f"certificate {describe(cert)} is not valid before "
                             f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")
    if now > cert.not_valid_after_utc:
        raise SignatureError(f"certificate {describe(cert)} expired at "
                             f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")


class Signer:
    """Signs envelopes with one certificate and its RSA private key.

    Both files are parsed once, here; :meth:`sign` then costs one RSA
    signature. Raises :class:`~notifier.errors.SignatureError` naming the file
    when either is unreadable, the key is not an unencrypted RSA key, the key
    does not belong to the certificate, or the certificate is outside its
    validity dates.
    """

    def __init__(self, certificate: str, private_key: str):
        self.certificate_path = certificate
        self.private_key_path = private_key
        try:
            cert = x509.load_pem_x509_certificates(
                _read("certificate", certificate, "certificate"))[0]
        except ValueError as exc:
            raise _MaterialError("certificate", certificate,
                                 "not a PEM certificate (-----BEGIN CERTIFICATE-----)") from exc
        key_pem = _read("private_key", private_key, "private key")
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError as exc:
            raise _MaterialError("private_key", private_key,
                                 "the private key is encrypted; give an unencrypted key") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise _MaterialError("private_key", private_key,
                                 f"not a PEM private key: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise _MaterialError("private_key", private_key,
                                 f"a {type(key).__name__} key; fedmsg's x509 signatures need RSA")
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise _MaterialError("private_key", private_key,
                                 f"this key does not belong to the certificate in {certificate} "
                                 f"({describe(cert)})")
        try:
            _check_dates(cert, _utcnow())
        except SignatureError as exc:
            raise _MaterialError("certificate", certificate, str(exc)) from exc
        self.cert = cert
        self._key = key
        self._certificate_field = _wrap(cert.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def from_config(cls, config: Config) -> Signer:
        """The signer ``[crypto] certificate`` and ``private_key`` describe.

        Raises :class:`~notifier.errors.ConfigError` naming the setting that
        is missing or whose file cannot be used.
        """
        crypto = config.crypto
        for key in ("certificate", "private_key"):
            if not getattr(crypto, key):
                raise ConfigError(f"{_where(config)}: sign_messages = true needs [crypto] {key}, "
                                  f"the path of a PEM file")
        try:
            return cls(crypto.certificate, crypto.private_key)  # type: ignore[arg-type]
        except _MaterialError as exc:
            raise ConfigError(f"{_where(config)}: [crypto] {exc.key} = {exc.path!r}: "
                              f"{exc.reason}") from exc

    def sign(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Return a new envelope with ``crypto``, ``signature`` and ``certificate`` set.

        Any old ``signature``/``certificate`` is replaced. The new dict shares
        the values (such as ``msg``) of ``envelope``; neither is changed.
        """
        signed = {k: v for k, v in envelope.items() if k not in _CREDENTIALS}
        signed["crypto"] = "x509"
        try:
            data = canonical_json(signed).encode("ascii")
        except (TypeError, ValueError) as exc:
            raise SignatureError(f"cannot sign the message on {envelope.get('topic')!r}: "
                                 f"{exc}") from exc
        signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA1())
        signed["signature"] = _wrap(signature)
        signed["certificate"] = self._certificate_field
        return signed


@dataclass(frozen=True)
class _Crl:
    crl: x509.CertificateRevocationList
    signer: x509.Certificate


@dataclass
class _Trust:
    """What the CA bundle and CRL file held when last read, and what was verified with it."""

    stamp: tuple[Any, ...]
    cas: list[x509.Certificate]
    by_subject: dict[x509.Name, list[x509.Certificate]]
    crls: list[_Crl]
    # certificate field -> (leaf, valid from, valid until)
    verified: dict[str, tuple[x509.Certificate, datetime.datetime, datetime.datetime]] = \
        field(default_factory=dict)


def _stamp(*paths: str | None) -> tuple[Any, ...]:
    out: list[Any] = []
    for path in paths:
        if path is None:
            out.append(None)
            continue
        try:
            st = os.stat(path)
        except OSError:
            out.append(False)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class Validator:
    """Checks signed envelopes against a CA bundle and, optionally, a CRL.

    Both files are read here, and read again when either has changed on
    disk (a rotated CA or a new CRL): looked at every ``recheck_interval``
    seconds, and whenever a certificate fails. A file that changed but cannot
    be read fails the message that noticed it; the old contents stay in use
    until the file can be read. The CRL's own signature must verify against a
    CA in the bundle. A certificate that passed is remembered (until the
    files change or its validity ends), so validating many messages from one
    sender costs one RSA verification each.

    ``clock`` returns the current time (UTC, timezone-aware); tests pass a
    fixed one.
    """

    def __init__(self, ca_cert: str, crl: str | None = None, *,
                 clock: Callable[[], datetime.datetime] = _utcnow,
                 recheck_interval: float = 5.0):
        self.ca_cert = ca_cert
        self.crl = crl
        self._clock = clock
        self._recheck_interval = recheck_interval
        self._next_recheck = time.monotonic() + recheck_interval
        self._lock = threading.Lock()
        self._trust = self._load()

    @classmethod
    def from_config(cls, config: Config) -> Validator:
        """The validator ``[crypto] ca_cert`` and ``crl`` describe.

        Raises :class:`~notifier.errors.ConfigError` when ``ca_cert`` is not
        set, or naming the setting whose file cannot be used.
        """
        crypto = config.crypto
        if not crypto.ca_cert:
            raise ConfigError(f"{_where(config)}: validating signatures needs [crypto] ca_cert, "
                              "the PEM file of the CA that issued the senders' certificates")
        try:
            return cls(crypto.ca_cert, crypto.crl)
        except _MaterialError as exc:
            raise ConfigError(f"{_where(config)}: [crypto] {exc.key} = {exc.path!r}: "
                              f"{exc.reason}") from exc

    # -- loading -----------------------------------------------------------

    def _load(self) -> _Trust:
        stamp = _stamp(self.ca_cert, self.crl)
        try:
            cas = x509.load_pem_x509_certificates(_read("ca_cert", self.ca_cert,
                                                        "CA certificate"))
        except ValueError as exc:
            raise _MaterialError("ca_cert", self.ca_cert,
                                 "no PEM certificate (-----BEGIN CERTIFICATE-----) in it") from exc
        by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for ca in cas:
            by_subject.setdefault(ca.subject, []).append(ca)
        crls = self._load_crls(by_subject) if self.crl else []
        return _Trust(stamp, cas, by_subject, crls)

    def _load_crls(self, by_subject: dict[x509.Name, list[x509.Certificate]]) -> list[_Crl]:
        assert self.crl is not None
        blocks = _CRL_BLOCK.findall(_read("crl", self.crl, "CRL"))
        if not blocks:
            raise _MaterialError("crl", self.crl, "no PEM CRL (-----BEGIN X509 CRL-----) in it")
        crls = []
        for number, block in enumerate(blocks, 1):
            try:
                crl = x509.load_pem_x509_crl(block)
            except ValueError as exc:
                raise _MaterialError("crl", self.crl, f"CRL number {number} is damaged: {exc}") \
                    from exc
            signer = next((ca for ca in by_subject.get(crl.issuer, ())
                           if _crl_signed_by(crl, ca)), None)
            if signer is None:
                raise _MaterialError(
                    "crl", self.crl, f"the CRL from {crl.issuer.rfc4514_string()} is not signed "
                    f"by any CA in {self.ca_cert}")
            crls.append(_Crl(crl, signer))
        return crls

    def _reload_if_changed(self, trust: _Trust) -> _Trust | None:
        with self._lock:
            if self._trust is not trust:  # another thread reloaded meanwhile
                return self._trust
            if _stamp(self.ca_cert, self.crl) == trust.stamp:
                return None
            try:
                self._trust = self._load()
            except _MaterialError as exc:
                raise SignatureError(f"cannot reload [crypto] {exc.key}: {exc}") from exc
            return self._trust

    # -- validation --------------------------------------------------------

    def validate(self, envelope: dict[str, Any]) -> str:
        """The signer (its certificate's subject, :func:`describe`) of a validly signed
        ``envelope``; :class:`SignatureError` saying why it is not.

        ``envelope`` is not changed.
        """
        if not isinstance(envelope, dict):
            raise SignatureError("the envelope is not a JSON object")
        # fedmsg 0.7.2 and older sent no "crypto" field; a certificate means x509.
        crypto = envelope.get("crypto", "x509")
        if crypto != "x509":
            raise SignatureError(f"crypto backend {crypto!r} is not supported (only 'x509')")
        for name in _CREDENTIALS:
            if name not in envelope:
                raise SignatureError(f"the message is not signed: it has no {name!r} field")
            if not isinstance(envelope[name], str):
                raise SignatureError(f"the {name!r} field is a "
                                     f"{type(envelope[name]).__name__}, not a string")
        signature = _unwrap("signature", envelope["signature"])
        cert = self._verified(envelope["certificate"])
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError(f"certificate {describe(cert)} has a {type(key).__name__} key; "
                                 "x509 signatures need RSA")
        try:
            data = signed_bytes(envelope)
        except (TypeError, ValueError) as exc:
            raise SignatureError(f"the envelope cannot be encoded for checking: {exc}") from exc
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA1())
        except InvalidSignature as exc:
            raise SignatureError(
                f"the signature does not match the message (signer {describe(cert)}): "
                "it was changed after signing, or signed with another key") from exc
        return describe(cert)

    def _verified(self, certificate: str) -> x509.Certificate:
        """The sender's certificate, once its chain, dates and revocation check out."""
        trust = self._trust
        if time.monotonic() >= self._next_recheck:
            self._next_recheck = time.monotonic() + self._recheck_interval
            trust = self._reload_if_changed(trust) or trust
        now = self._clock()
        hit = trust.verified.get(certificate)
        if hit is not None and hit[1] <= now <= hit[2]:
            return hit[0]
        pem = _unwrap("certificate", certificate)
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise SignatureError("the 'certificate' field does not hold a PEM X.509 "
                                 f"certificate: {exc}") from exc
        try:
            valid_from, valid_until = self._check_chain(trust, cert, now)
        except SignatureError:
            reloaded = self._reload_if_changed(trust)
            if reloaded is None:
                raise
            trust = reloaded
            valid_from, valid_until = self._check_chain(trust, cert, now)
        if len(trust.verified) >= _CACHE_SIZE:
            trust.verified.clear()
        trust.verified[certificate] = (cert, valid_from, valid_until)
        return cert

    def _check_chain(self, trust: _Trust, leaf: x509.Certificate, now: datetime.datetime
                     ) -> tuple[datetime.datetime, datetime.datetime]:
        """Walk from ``leaf`` up to a self-signed CA of the bundle.

        Returns the time span in which the result holds: the overlap of the
        validity of every certificate and CRL used.
        """
        valid_from, valid_until = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        current = leaf
        for depth in range(_MAX_CHAIN):
            _check_dates(current, now)
            if current.subject == current.issuer and current in trust.cas:
                return valid_from, valid_until
            if depth:
                _check_is_ca(current)
            issuer = self._issuer(trust, current)
            if issuer is None:
                detail = "" if depth == 0 else f" (its chain stops at {describe(current)})"
                raise SignatureError(f"certificate {describe(leaf)} is not issued by a CA "
                                     f"in {self.ca_cert}{detail}")
            crl_until = self._check_revocation(trust, current, issuer, now, leaf=depth == 0)
            valid_from = max(valid_from, issuer.not_valid_before_utc)
            valid_until = min(valid_until, issuer.not_valid_after_utc, crl_until)
            current = issuer
        raise SignatureError(f"certificate {describe(leaf)}: chain longer than {_MAX_CHAIN}")

    @staticmethod
    def _issuer(trust: _Trust, cert: x509.Certificate) -> x509.Certificate | None:
        for candidate in trust.by_subject.get(cert.issuer, ()):
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return candidate
        return None

    def _check_revocation(self, trust: _Trust, cert: x509.Certificate,
                          issuer: x509.Certificate, now: datetime.datetime, *, leaf: bool
                          ) -> datetime.datetime:
        """Raise if ``cert`` is revoked; return until when that answer holds."""
        never = datetime.datetime.max.replace(tzinfo=datetime.UTC)
        if not trust.crls:
            return never
        entry = next((c for c in trust.crls if c.signer == issuer), None)
        if entry is None:
            if leaf:
                raise SignatureError(f"{self.crl} has no CRL from {describe(issuer)}, so "
                                     f"revocation of {describe(cert)} cannot be checked")
            return never
        crl = entry.crl
        if now < crl.last_update_utc:
            raise SignatureError(f"the CRL from {describe(issuer)} in {self.crl} is not valid "
                                 f"before {crl.last_update_utc:%Y-%m-%d %H:%M:%S} UTC")
        next_update = crl.next_update_utc
        if next_update is not None and now > next_update:
            raise SignatureError(f"the CRL from {describe(issuer)} in {self.crl} expired at "
                                 f"{next_update:%Y-%m-%d %H:%M:%S} UTC; fetch a new one")
        revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if revoked is not None:
            raise SignatureError(
                f"certificate {describe(cert)} (serial {cert.serial_number:x}) was revoked "
                f"on {revoked.revocation_date_utc:%Y-%m-%d} by {self.crl}")
        return next_update or never


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def _check_is_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise SignatureError(f"certificate {describe(cert)} issued others but is not a CA "
                             "(basicConstraints CA:FALSE or missing)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise SignatureError(f"CA certificate {describe(cert)} may not sign certificates "
                             "(keyUsage lacks keyCertSign)")
