"""STARTTLS against the real SMTP server: offered → used, and the password travels only
inside TLS (the server refuses AUTH before STARTTLS)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backupctl.notify import notify_test
from tests.integration.notify.conftest import FAST, SMTP_PASSWORD, Site
from tests.notify_servers import start_smtp


def self_signed(root: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    root.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls_is_used_when_offered_and_an_untrusted_certificate_is_refused(
        site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path / "tls")
    server = start_smtp(tmp_path / "smtp", user="backupctl", password=SMTP_PASSWORD,
                        cert=(cert, key))
    try:
        site.email("it-mail", server.url(user="backupctl"), password=SMTP_PASSWORD)
        config = site.config()
        store = site.store()
        # Not trusted yet: no message, a clear reason, no retry.
        (refused,) = notify_test(config, store, budget=FAST)
        assert not refused.ok and refused.error is not None
        assert "certificate" in refused.error and refused.attempts == 1
        # Trusted (as a hospital's own CA would be, via the system store): delivered.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        (sent,) = notify_test(config, store, budget=FAST)
        assert sent.ok, sent.error
        (mail,) = server.messages()
        assert mail["Subject"] == "[backupctl] テスト通知（it-mail）"
    finally:
        server.stop()
