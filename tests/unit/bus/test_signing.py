"""X.509 signing and validation, checked against fedmsg 1.1.7's own x509 backend."""

from __future__ import annotations

import base64
import copy
import datetime
import json
from pathlib import Path
from typing import Any

import fedmsg.crypto.x509_ng as fedmsg_x509
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from notifier.bus.envelope import EnvelopeBuilder, canonical_json
from notifier.bus.publisher import Publisher
from notifier.bus.signing import Signer, Validator, signed_bytes
from notifier.bus.transport import PublisherTransport
from notifier.config import config_from_dict
from notifier.errors import ConfigError, SignatureError
from tests.integration.certs import (
    Pki,
    cert_pem,
    crl_pem,
    issue,
    key_pem,
    make_crl,
    make_pki,
)

UTC = datetime.UTC


#: the subject of the test PKI's signing certificate (tests/integration/certs.py)
SIGNER = "CN=shell-vm.example.org,O=Notifier Test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def signer(pki: Pki) -> Signer:
    return Signer(str(pki.signer_cert), str(pki.signer_key))


@pytest.fixture
def validator(pki: Pki) -> Validator:
    return Validator(str(pki.ca_cert), str(pki.crl))


def envelope(body: Any = None, topic: str = "repo.update") -> dict[str, Any]:
    body = {"text": "caf\u00e9 \u2713", "n": [1, 2.5, None], "ok": True} if body is None else body
    return EnvelopeBuilder("org.fedoraproject", "dev", username="alice").build("git", topic, body)


def fedmsg_signed(pki: Pki, certname: str = "signer", body: Any = None) -> dict[str, Any]:
    """An envelope signed by fedmsg 1.1.7 itself with ``pki.directory/<certname>.crt``."""
    return fedmsg_x509.sign(envelope(body), ssldir=str(pki.directory), certname=certname)


def fedmsg_accepts(pki: Pki, env: dict[str, Any]) -> bool:
    return fedmsg_x509.validate(copy.deepcopy(env), ca_cert_location=str(pki.ca_cert),
                                crl_location=str(pki.crl))


def rejected(validator: Validator, env: dict[str, Any]) -> str:
    with pytest.raises(SignatureError) as info:
        validator.validate(env)
    return str(info.value)


def wire(env: dict[str, Any]) -> dict[str, Any]:
    """The envelope as a receiver decodes it off the bus."""
    return json.loads(canonical_json(env))


# -- signing ---------------------------------------------------------------------------------


def test_sign_adds_fedmsg_fields_and_leaves_input_alone(signer, pki):
    original = envelope()
    before = copy.deepcopy(original)
    signed = signer.sign(original)
    assert original == before
    assert signed is not original
    assert signed["crypto"] == "x509"
    assert {k: v for k, v in signed.items() if k not in ("crypto", "signature", "certificate")} \
        == original
    for name in ("signature", "certificate"):
        lines = signed[name].split("\n")
        assert signed[name].endswith("\n") and lines[-1] == ""
        assert all(len(line) == 76 for line in lines[:-2]) and 0 < len(lines[-2]) <= 76
    assert base64.b64decode(signed["certificate"]) == pki.signer_cert.read_bytes()


def test_signature_is_pkcs1v15_sha1_over_canonical_json_with_crypto(signer, pki):
    signed = signer.sign(envelope())
    data = canonical_json({k: v for k, v in signed.items()
                           if k not in ("signature", "certificate")}).encode()
    assert b'"crypto":"x509"' in data and b"\\u00e9" in data  # ASCII escapes, as fedmsg
    cert = x509.load_pem_x509_certificate(pki.signer_cert.read_bytes())
    cert.public_key().verify(base64.b64decode(signed["signature"]), data,
                             padding.PKCS1v15(), hashes.SHA1())


def test_fedmsg_accepts_our_signature(signer, pki):
    assert fedmsg_accepts(pki, wire(signer.sign(envelope())))


def test_fedmsg_rejects_our_signature_after_tampering(signer, pki):
    signed = wire(signer.sign(envelope()))
    signed["msg"]["text"] = "changed"
    assert not fedmsg_accepts(pki, signed)


def test_resigning_replaces_old_credentials(signer, pki, validator):
    rogue = Signer(str(pki.rogue_cert), str(pki.rogue_key)).sign(envelope())
    resigned = signer.sign(rogue)
    assert resigned["certificate"] == signer.sign(envelope())["certificate"]
    assert validator.validate(wire(resigned)) == SIGNER


def test_signer_keeps_parsed_material(pki, tmp_path, validator):
    cert, key = tmp_path / "s.crt", tmp_path / "s.key"
    cert.write_bytes(pki.signer_cert.read_bytes())
    key.write_bytes(pki.signer_key.read_bytes())
    signer = Signer(str(cert), str(key))
    cert.unlink()
    key.unlink()
    assert validator.validate(wire(signer.sign(envelope()))) == SIGNER


def test_signer_rejects_key_of_another_certificate(pki):
    with pytest.raises(SignatureError, match="does not belong to the certificate") as info:
        Signer(str(pki.signer_cert), str(pki.rogue_key))
    assert str(pki.rogue_key) in str(info.value)


def test_signer_rejects_encrypted_key(pki, tmp_path):
    key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), None)
    path = tmp_path / "enc.key"
    path.write_bytes(key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(SignatureError, match="encrypted"):
        Signer(str(pki.signer_cert), str(path))


def test_signer_rejects_non_rsa_key(pki, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(SignatureError, match="need RSA"):
        Signer(str(pki.signer_cert), str(path))


def test_signer_rejects_expired_certificate(pki):
    with pytest.raises(SignatureError, match="expired at") as info:
        Signer(str(pki.expired_cert), str(pki.expired_key))
    assert str(pki.expired_cert) in str(info.value)


@pytest.mark.parametrize("which", ["certificate", "private_key"])
def test_signer_names_unreadable_or_garbage_file(pki, tmp_path, which):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a pem file\n")
    paths = {"certificate": str(pki.signer_cert), "private_key": str(pki.signer_key)}
    for bad, reason in ((tmp_path / "missing.pem", "cannot read"), (garbage, "not a PEM")):
        with pytest.raises(SignatureError, match=reason) as info:
            Signer(**{**paths, which: str(bad)})
        assert str(bad) in str(info.value)


def test_signer_from_config(pki, tmp_path):
    source = str(tmp_path / "notifier.toml")
    crypto = {"certificate": str(pki.signer_cert), "private_key": str(pki.signer_key)}
    signer = Signer.from_config(config_from_dict({"crypto": crypto}, source))
    assert signer.cert.serial_number == x509.load_pem_x509_certificate(
        pki.signer_cert.read_bytes()).serial_number
    for missing in ("certificate", "private_key"):
        partial = {k: v for k, v in crypto.items() if k != missing}
        with pytest.raises(ConfigError, match=rf"\[crypto\] {missing}") as info:
            Signer.from_config(config_from_dict({"crypto": partial}, source))
        assert source in str(info.value)
    unreadable = {**crypto, "private_key": str(tmp_path / "nope.key")}
    with pytest.raises(ConfigError, match=r"\[crypto\] private_key = .*nope.key.*cannot read"):
        Signer.from_config(config_from_dict({"crypto": unreadable}, source))


class Captured(PublisherTransport):
    """Keeps what the publisher sends."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, bytes]] = []

    def send(self, topic: bytes, envelope: bytes) -> None:
        self.frames.append((topic, envelope))

    def close(self) -> None:
        pass


def test_publisher_sends_signed_envelopes_when_configured(pki, tmp_path, validator):
    config = config_from_dict({"sign_messages": True, "crypto": {
        "certificate": str(pki.signer_cert), "private_key": str(pki.signer_key)}},
        str(tmp_path / "notifier.toml"))
    transport = Captured()
    with Publisher(config, transport=transport) as publisher:
        publisher.publish("repo.update", {"text": "caf\u00e9"}, modname="git")
    (topic, payload), = transport.frames
    assert topic == b"org.fedoraproject.dev.git.repo.update"
    received = json.loads(payload)
    validator.validate(received)
    assert fedmsg_accepts(pki, received)


# -- validation ------------------------------------------------------------------------------


def test_accepts_ours_and_does_not_change_the_envelope(signer, validator):
    received = wire(signer.sign(envelope()))
    before = copy.deepcopy(received)
    validator.validate(received)
    validator.validate(received)  # second time from the cache
    assert received == before


def test_accepts_fedmsg_signed_messages(pki, validator):
    assert validator.validate(wire(fedmsg_signed(pki))) == SIGNER
    deep = fedmsg_signed(pki, body={"deep": {"list": [{"x": "\u00fc"}]}})
    assert validator.validate(wire(deep)) == SIGNER
    deep["msg"]["deep"]["list"][0]["x"] = "u"  # the same message, changed after signing
    with pytest.raises(SignatureError, match="does not match"):
        validator.validate(wire(deep))


def test_accepts_old_fedmsg_messages_without_crypto_field(pki, validator):
    env = envelope()
    key = serialization.load_pem_private_key(pki.signer_key.read_bytes(), None)
    signature = key.sign(signed_bytes(env), padding.PKCS1v15(), hashes.SHA1())  # type: ignore
    env["signature"] = base64.b64encode(signature).decode()
    env["certificate"] = base64.b64encode(pki.signer_cert.read_bytes()).decode()
    assert "crypto" not in env
    assert validator.validate(wire(env)) == SIGNER


@pytest.mark.parametrize("change", ["body", "topic", "added field", "removed field", "crypto"])
def test_rejects_changes_after_signing(signer, validator, change):
    received = wire(signer.sign(envelope()))
    if change == "body":
        received["msg"]["text"] = "changed"
    elif change == "topic":
        received["topic"] += ".more"
    elif change == "added field":
        received["seq_id"] = 1  # what fedmsg's persistent store adds after signing
    elif change == "removed field":
        del received["username"]
    else:
        del received["crypto"]
    assert "signature does not match the message" in rejected(validator, received)


def test_rejects_signature_of_another_message(signer, validator):
    one, other = wire(signer.sign(envelope())), wire(signer.sign(envelope({"x": 1})))
    one["signature"] = other["signature"]
    assert "signature does not match" in rejected(validator, one)


def test_rejects_certificate_swapped_for_one_from_another_ca(pki, signer, validator):
    received = wire(signer.sign(envelope()))
    received["certificate"] = base64.b64encode(pki.rogue_cert.read_bytes()).decode()
    reason = rejected(validator, received)
    assert "CN=shell-vm.example.org" in reason and f"not issued by a CA in {pki.ca_cert}" \
        in reason


def test_rejects_message_signed_under_a_rogue_ca_of_the_same_name(pki, validator):
    env = wire(fedmsg_signed(pki, "rogue"))
    assert "not issued by a CA" in rejected(validator, env)
    assert not fedmsg_accepts(pki, env)


def test_rejects_revoked_certificate(pki, validator):
    env = wire(fedmsg_signed(pki, "revoked"))
    reason = rejected(validator, env)
    assert "CN=revoked.example.org" in reason and "was revoked on" in reason
    assert str(pki.crl) in reason
    assert not fedmsg_accepts(pki, env)
    # Without a CRL the same message is fine.
    Validator(str(pki.ca_cert)).validate(env)


def test_rejects_expired_and_not_yet_valid_certificates(pki, validator, tmp_path):
    env = wire(fedmsg_signed(pki, "expired"))
    assert "CN=expired.example.org" in rejected(validator, env)
    assert "expired at" in rejected(validator, env)

    later = datetime.datetime.now(UTC) + datetime.timedelta(days=2)
    future = issue("future.example.org", pki.ca, not_before=later,
                   not_after=later + datetime.timedelta(days=2))
    (tmp_path / "future.crt").write_bytes(cert_pem(future.cert))
    (tmp_path / "future.key").write_bytes(key_pem(future.key))
    env = wire(fedmsg_x509.sign(envelope(), ssldir=str(tmp_path), certname="future"))
    assert "is not valid before" in rejected(validator, env)
    Validator(str(pki.ca_cert), str(pki.crl),
              clock=lambda: later + datetime.timedelta(hours=1)).validate(env)


@pytest.mark.parametrize("field,value,reason", [
    ("signature", "@@not base64@@", "'signature' field is not valid base64"),
    ("certificate", "@@not base64@@", "'certificate' field is not valid base64"),
    ("certificate", base64.b64encode(b"hello").decode(), "does not hold a PEM X.509"),
    ("signature", 12, "'signature' field is a int, not a string"),
    ("certificate", None, "'certificate' field is a NoneType"),
])
def test_rejects_garbage_credentials(signer, validator, field, value, reason):
    received = wire(signer.sign(envelope()))
    received[field] = value
    assert reason in rejected(validator, received)


@pytest.mark.parametrize("field", ["signature", "certificate"])
def test_rejects_missing_credentials(signer, validator, field):
    received = wire(signer.sign(envelope()))
    del received[field]
    assert f"not signed: it has no {field!r} field" in rejected(validator, received)


def test_rejects_unsigned_and_other_backends(signer, validator):
    assert "not signed" in rejected(validator, wire(envelope()))
    gpg = wire(signer.sign(envelope()))
    gpg["crypto"] = "gpg"
    assert "'gpg' is not supported" in rejected(validator, gpg)


def test_ca_bundle_with_intermediate(pki):
    env = wire(fedmsg_signed(pki, "chained"))
    Validator(str(pki.bundle)).validate(env)
    assert "not issued by a CA" in rejected(Validator(str(pki.ca_cert)), env)
    # Intermediate alone is not enough: the chain must end at a self-signed CA.
    assert "chain stops at CN=Notifier Test Intermediate CA" in rejected(
        Validator(str(pki.intermediate_cert)), env)
    # A CRL from the root only cannot say whether the intermediate revoked the leaf.
    reason = rejected(Validator(str(pki.bundle), str(pki.crl)), env)
    assert "has no CRL from CN=Notifier Test Intermediate CA" in reason


def test_rejects_chain_through_a_certificate_that_is_not_a_ca(pki, tmp_path):
    not_ca = issue("Not A CA", pki.ca)  # basicConstraints CA:FALSE
    leaf = issue("leaf.example.org", not_ca)
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(cert_pem(pki.ca.cert) + cert_pem(not_ca.cert))
    (tmp_path / "leaf.crt").write_bytes(cert_pem(leaf.cert))
    (tmp_path / "leaf.key").write_bytes(key_pem(leaf.key))
    env = wire(fedmsg_x509.sign(envelope(), ssldir=str(tmp_path), certname="leaf"))
    assert "CN=Not A CA,O=Notifier Test issued others but is not a CA" in rejected(
        Validator(str(bundle)), env)


def test_crl_must_be_signed_by_the_ca(pki, tmp_path):
    impostor = issue("Notifier Test CA", ca=True)  # the CA's name, another key
    forged = tmp_path / "forged-crl.pem"
    forged.write_bytes(crl_pem(make_crl(impostor, [])))
    with pytest.raises(SignatureError, match="is not signed by any CA in") as info:
        Validator(str(pki.ca_cert), str(forged))
    assert str(forged) in str(info.value)
    config = config_from_dict({"crypto": {"ca_cert": str(pki.ca_cert), "crl": str(forged)}},
                              str(tmp_path / "notifier.toml"))
    with pytest.raises(ConfigError, match=r"\[crypto\] crl = .*forged-crl.pem"):
        Validator.from_config(config)


def test_expired_crl_fails_closed(pki, signer):
    received = wire(signer.sign(envelope()))
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=8)
    late = Validator(str(pki.ca_cert), str(pki.crl), clock=lambda: later)
    reason = rejected(late, received)
    assert "CRL from CN=Notifier Test CA" in reason and "expired at" in reason


def test_new_crl_is_picked_up_without_restart(pki, tmp_path, signer):
    crl = tmp_path / "crl.pem"
    crl.write_bytes(crl_pem(make_crl(pki.ca, [])))
    validator = Validator(str(pki.ca_cert), str(crl), recheck_interval=0)
    received = wire(signer.sign(envelope()))
    validator.validate(received)  # now cached as good
    signer_cert = x509.load_pem_x509_certificate(pki.signer_cert.read_bytes())
    crl.write_bytes(crl_pem(make_crl(pki.ca, [signer_cert])) + b"\n")
    assert "was revoked" in rejected(validator, received)


def test_validator_loading_errors(pki, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("nothing here\n")
    with pytest.raises(SignatureError, match="no PEM certificate"):
        Validator(str(garbage))
    with pytest.raises(SignatureError, match="cannot read the CA certificate"):
        Validator(str(tmp_path / "missing.crt"))
    with pytest.raises(SignatureError, match="no PEM CRL"):
        Validator(str(pki.ca_cert), str(garbage))


def test_validator_from_config(pki, tmp_path, signer):
    source = str(tmp_path / "notifier.toml")
    with pytest.raises(ConfigError, match=r"needs \[crypto\] ca_cert") as info:
        Validator.from_config(config_from_dict({}, source))
    assert source in str(info.value)
    missing = config_from_dict({"crypto": {"ca_cert": str(tmp_path / "ca.crt")}}, source)
    with pytest.raises(ConfigError, match=r"\[crypto\] ca_cert = .*cannot read"):
        Validator.from_config(missing)
    config = config_from_dict({"crypto": {"ca_cert": str(pki.ca_cert), "crl": str(pki.crl)}},
                              source)
    Validator.from_config(config).validate(wire(signer.sign(envelope())))


def test_paths_in_a_config_file_are_relative_to_it(pki, tmp_path, signer):
    ca = tmp_path / "pki" / "ca.crt"
    ca.parent.mkdir()
    ca.write_bytes(pki.ca_cert.read_bytes())
    config = config_from_dict({"crypto": {"ca_cert": "pki/ca.crt"}},
                              str(tmp_path / "notifier.toml"))
    assert Path(config.crypto.ca_cert) == ca
    Validator.from_config(config).validate(wire(signer.sign(envelope())))
