"""The pure parts of TLS: settings from the environment, certificates, error messages,
and ``minray tls init``'s files (no sockets here; see tests/integration/test_tls_functional.py)."""

from __future__ import annotations

import datetime
import os
import stat

import pytest

from minray import tls_certs, tls_cli
from minray.cluster_cli import unencrypted_warning
from minray.config import Config
from minray.protocol import tls

x509 = pytest.importorskip("cryptography.x509")


def test_tls_settings_are_read_from_the_minray_environment_variables(monkeypatch):
    monkeypatch.setenv("MINRAY_USE_TLS", "1")
    monkeypatch.setenv("MINRAY_TLS_SERVER_CERT", "/c.pem")
    monkeypatch.setenv("MINRAY_TLS_SERVER_KEY", "/k.pem")
    monkeypatch.setenv("MINRAY_TLS_CA_CERT", "/ca.pem")
    settings = Config.from_env()
    assert settings.use_tls is True
    assert (settings.tls_server_cert, settings.tls_server_key, settings.tls_ca_cert) == (
        "/c.pem",
        "/k.pem",
        "/ca.pem",
    )


def test_tls_is_off_unless_asked_for():
    assert Config().use_tls is False
    assert tls.settings_problem(Config()) is None


def test_use_tls_that_is_not_a_flag_is_refused(monkeypatch):
    monkeypatch.setenv("MINRAY_USE_TLS", "maybe")
    with pytest.raises(ValueError, match="MINRAY_USE_TLS='maybe' is not a valid bool"):
        Config.from_env()


def test_tls_on_without_a_certificate_names_the_missing_variable_and_the_fix():
    problem = tls.settings_problem(Config(use_tls=True))
    assert "MINRAY_TLS_SERVER_CERT" in problem and "minray tls init" in problem


def test_tls_on_with_an_unreadable_file_names_it(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    settings = Config(use_tls=True, tls_server_cert=str(cert), tls_server_key=str(cert))
    problem = tls.settings_problem(settings)
    assert "MINRAY_TLS_CA_CERT" in problem  # the first one missing
    settings = Config(
        use_tls=True,
        tls_server_cert=str(cert),
        tls_server_key=str(tmp_path / "gone.pem"),
        tls_ca_cert=str(cert),
    )
    assert "MINRAY_TLS_SERVER_KEY=" in tls.settings_problem(settings)
    assert "cannot be read" in tls.settings_problem(settings)


def test_a_key_that_is_not_the_certificates_is_refused_when_loading(tmp_path):
    ca = tls_certs.make_ca()
    one, two = (tls_certs.make_node_cert(ca, ["127.0.0.1"]) for _ in range(2))
    tls_certs.write_issued(ca, str(tmp_path / "ca.crt"), str(tmp_path / "ca.key"))
    tls_certs.write_issued(one, str(tmp_path / "1.crt"), str(tmp_path / "1.key"))
    tls_certs.write_issued(two, str(tmp_path / "2.crt"), str(tmp_path / "2.key"))
    tls.make_contexts(str(tmp_path / "1.crt"), str(tmp_path / "1.key"), str(tmp_path / "ca.crt"))
    with pytest.raises(tls.TLSSettingsError, match="its own key"):
        tls.make_contexts(
            str(tmp_path / "1.crt"), str(tmp_path / "2.key"), str(tmp_path / "ca.crt")
        )


def test_node_certificate_names_its_host_and_loopback_and_serves_both_ends():
    ca = tls_certs.make_ca()
    issued = tls_certs.make_node_cert(ca, tls_certs.node_hosts("10.1.2.3"))
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [
        "10.1.2.3",
        "127.0.0.1",
    ]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u._name for u in usage} == {"serverAuth", "clientAuth"}
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.issuer == ca_cert.subject
    cert.verify_directly_issued_by(ca_cert)


def test_a_certificate_made_in_the_past_is_expired():
    ca = tls_certs.make_ca()
    then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=10)
    issued = tls_certs.make_node_cert(ca, ["localhost"], days=1, valid_from=then)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert cert.not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc)


def test_a_certificate_needs_a_host():
    with pytest.raises(ValueError, match="at least one host"):
        tls_certs.make_node_cert(tls_certs.make_ca(), [])


def test_tls_init_writes_private_keys_and_reuses_its_ca(tmp_path, capsys):
    folder = str(tmp_path / "certs")
    written = tls_cli.init(folder, ["10.0.0.1", "node2.lab"])
    assert set(written) == {"10.0.0.1", "node2.lab"}
    for path in (os.path.join(folder, "ca.key"), *(key for _, key in written.values())):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    out = capsys.readouterr().out
    assert "export MINRAY_USE_TLS=1" in out
    assert f"MINRAY_TLS_SERVER_CERT={os.path.abspath(written['node2.lab'][0])}" in out
    with open(os.path.join(folder, "ca.crt"), "rb") as f:
        ca_before = f.read()
    tls_cli.init(folder, ["10.0.0.3"])  # a machine added later: the same CA signs it
    with open(os.path.join(folder, "ca.crt"), "rb") as f:
        assert f.read() == ca_before
    assert "Using the CA already" in capsys.readouterr().out


def test_tls_init_refuses_a_host_that_is_a_path(tmp_path):
    with pytest.raises(ValueError, match="not an IP address or host name"):
        tls_cli.init(str(tmp_path), ["../etc"])


class _VerifyError(OSError):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.verify_code, self.verify_message = code, message


@pytest.mark.parametrize(
    "code, message, advice",
    [
        (10, "certificate has expired", "make a new one"),
        (64, "IP address mismatch", "--hosts ADDRESS"),
        (20, "unable to get local issuer certificate", "not signed by the CA"),
    ],
)
def test_a_refused_certificate_is_described_with_the_side_and_what_to_do(code, message, advice):
    text = tls.describe(_VerifyError(code, message), "10.0.0.2:6380", we_dialled=True)
    assert "with 10.0.0.2:6380 refused by this side (the client)" in text
    assert "the server's certificate failed verification" in text
    assert message in text and advice in text


def test_an_alert_from_the_peer_says_the_other_side_refused_our_certificate():
    class SSLError(OSError):
        reason = "TLSV1_ALERT_UNKNOWN_CA"

    text = tls.describe(SSLError("tlsv1 alert unknown ca"), "h:1", we_dialled=False)
    assert "refused by the other side (the client)" in text


def test_a_tls_hello_on_a_plain_listener_gets_a_hint_and_other_bytes_do_not():
    assert "speaks TLS" in tls.plain_peer_hint(b"\x16\x03\x01\x02\x00")
    assert tls.plain_peer_hint(b"\x00\x00\x00\x10") == ""


def test_start_warns_of_unencrypted_traffic_only_off_loopback_and_without_tls():
    warning = unencrypted_warning("10.0.0.1", use_tls=False)
    assert "unencrypted" in warning and "pickled code" in warning
    assert "minray tls init" in warning and "MINRAY_USE_TLS=1" in warning
    assert unencrypted_warning("10.0.0.1", use_tls=True) is None
    assert unencrypted_warning("127.0.0.1", use_tls=False) is None
    assert unencrypted_warning("127.0.0.2", use_tls=False) is None
