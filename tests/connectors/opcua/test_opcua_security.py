"""Security against a real asyncua server that demands encryption and a login.

The server offers only secured endpoints (Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss)
and only UserName and X509 identities. Certificates are generated into tmp folders.
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from opcua_helpers import bind, connection, free_port, running

from connectors.opcua.security import uri_of
from models.status import GOOD

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVER_URI = "urn:parklink:test:secure-server"
P = ua.SecurityPolicyType


@dataclass
class SecureServer:
    server: Server
    endpoint: str
    certificate: Path
    thumbprint: str
    user_certificate: Path
    user_key: Path
    client_check: ClientCheck


class ClientCheck:
    """The server's check of client certificates: refuses every client while `refuse` is set."""

    def __init__(self) -> None:
        self.refuse = False

    async def __call__(self, certificate: x509.Certificate, description: ua.ApplicationDescription) -> None:
        if self.refuse:
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)


class Users:
    """operator / s3cret, or the one user certificate."""

    def __init__(self) -> None:
        self.user_certificate: bytes | None = None

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username == "operator" and password == "s3cret":
            return User(role=UserRole.User, name=username)
        if certificate is not None and self.user_certificate is not None:
            der = (
                certificate.public_bytes(Encoding.DER)
                if hasattr(certificate, "public_bytes")
                else certificate
            )
            if der == self.user_certificate:
                return User(role=UserRole.User, name="cert-user")
        return None


async def _self_signed(
    folder: Path, name: str, uri: str, use: list[x509.ObjectIdentifier]
) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.der", folder / f"{name}.pem"
    await cert_gen.setup_self_signed_certificate(key, cert, uri, socket.gethostname(), use, {})
    return cert, key


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureServer]:
    folder = tmp_path_factory.mktemp("server-pki")
    cert, key = await _self_signed(folder, "server", SERVER_URI, [ExtendedKeyUsageOID.SERVER_AUTH])
    user_cert, user_key = await _self_signed(
        folder, "user", "urn:parklink:test:user", [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    users = Users()
    users.user_certificate = x509.load_der_x509_certificate(user_cert.read_bytes()).public_bytes(Encoding.DER)
    server = Server(user_manager=users)  # type: ignore[arg-type]
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/secure/"
    server.set_endpoint(endpoint)
    await server.set_application_uri(SERVER_URI)
    server.set_security_policy(
        [
            P.Basic256Sha256_SignAndEncrypt,
            P.Basic256Sha256_Sign,
            P.Aes128Sha256RsaOaep_SignAndEncrypt,
            P.Aes256Sha256RsaPss_SignAndEncrypt,
            P.Aes256Sha256RsaPss_Sign,
        ]
    )
    server.set_identity_tokens([ua.UserNameIdentityToken, ua.X509IdentityToken])
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    idx = await server.register_namespace("urn:parklink:secure")
    folder_node = await server.nodes.objects.add_folder(ua.NodeId("S", idx), ua.QualifiedName("S", idx))
    await folder_node.add_variable(ua.NodeId("S.Value", idx), ua.QualifiedName("Value", idx), 1.0)
    client_check = ClientCheck()
    server.set_certificate_validator(client_check)
    thumb = x509.load_der_x509_certificate(cert.read_bytes()).fingerprint(hashes.SHA1()).hex().upper()
    for name in ("asyncua.server", "asyncua.crypto", "asyncua.common"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # refused logins are logged as errors
    async with server:
        yield SecureServer(server, endpoint, cert, thumb, user_cert, user_key, client_check)


def _pki(tmp_path: Path, secure: SecureServer, trusted: bool = True) -> dict[str, str]:
    """A fresh pki_dir; the server's certificate in its trusted folder unless `trusted` is False."""
    root = tmp_path / "pki"
    (root / "trusted").mkdir(parents=True)
    if trusted:
        shutil.copy(secure.certificate, root / "trusted" / "server.der")
    return {"pki_dir": str(root)}


def _secured(secure: SecureServer, tmp_path: Path, policy: str, mode: str, **changes: Any) -> Any:
    login = {"username": "operator", "password": "s3cret"}
    trusted = changes.pop("trusted", True)
    raw = {
        "security_policy": policy,
        "security_mode": mode,
        **login,
        **_pki(tmp_path, secure, trusted),
        **changes,
    }
    return connection(secure.endpoint, timeout=4, reconnect_initial=0.2, reconnect_max=0.5, **raw)


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
        ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "Sign"),
    ],
)
async def test_login_and_data(secure: SecureServer, tmp_path: Path, policy: str, mode: str) -> None:
    """Right password, trusted server: up, and data flows; the client certificate is generated."""
    conn = _secured(secure, tmp_path, policy, mode)
    async with running(conn, bind(["ns=2;s=S.Value"])) as (connector, sink, health):
        await sink.until(lambda: health.up and 0 in sink.latest(), 15, "secured data")
        assert sink.latest()[0].status == GOOD
        await secure.server.write_attribute_value(
            ua.NodeId("S.Value", 2), ua.DataValue(ua.Variant(42.0, ua.VariantType.Double))
        )
        await sink.until(lambda: sink.latest()[0].value == 42.0, 5, "a change")
        session = connector._session
        assert session is not None and session.client.security_policy.Mode == getattr(
            ua.MessageSecurityMode, mode
        )
        assert session.client.application_uri == f"urn:{socket.gethostname()}:parklink"
    own = tmp_path / "pki" / "own" / "cert.der"
    assert own.is_file() and (tmp_path / "pki" / "own" / "key.pem").is_file()
    cert = x509.load_der_x509_certificate(own.read_bytes())
    assert uri_of(cert) == f"urn:{socket.gethostname()}:parklink"  # = the client's ApplicationUri
    assert health.read_errors == 0


async def test_wrong_password_is_refused(
    secure: SecureServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused login is health down with a clear reason, retried with backoff, logged once."""
    caplog.set_level(logging.WARNING, logger="parklink.connection")
    conn = _secured(secure, tmp_path, "Basic256Sha256", "SignAndEncrypt", password="wrong")
    async with running(conn, bind(["ns=2;s=S.Value"])) as (_, sink, health):
        await sink.until(lambda: health.read_errors >= 2, 15, "two refused attempts")
    assert not health.up
    assert "BadUserAccessDenied" in health.last_error and "password" in health.last_error
    assert len([r for r in caplog.records if "connection failed" in r.getMessage()]) == 1


async def test_untrusted_server_then_trusted(secure: SecureServer, tmp_path: Path) -> None:
    """An untrusted server certificate is refused naming its thumbprint and the trust folder; once the
    kept copy is moved into that folder, the next retry connects."""
    conn = _secured(secure, tmp_path, "Aes256_Sha256_RsaPss", "SignAndEncrypt", trusted=False)
    trusted, rejected = (
        tmp_path / "pki" / "trusted",
        tmp_path / "pki" / "rejected" / f"{secure.thumbprint}.der",
    )
    async with running(conn, bind(["ns=2;s=S.Value"])) as (_, sink, health):
        await sink.until(lambda: health.read_errors >= 1, 15, "a refused attempt")
        assert not health.up
        assert secure.thumbprint in health.last_error and "not trusted" in health.last_error
        assert str(trusted) in health.last_error and str(rejected) in health.last_error
        assert rejected.read_bytes() == secure.certificate.read_bytes()
        shutil.move(rejected, trusted / rejected.name)
        await sink.until(
            lambda: health.up and 0 in sink.latest() and sink.latest()[0].status == GOOD, 10, "up"
        )


async def test_trusted_by_ca(secure: SecureServer, tmp_path: Path) -> None:
    """A server certificate signed by a CA in the trust folder is trusted; a stranger's CA is not enough."""
    from connectors.opcua.security import is_trusted, load_certificate_file

    server_cert = load_certificate_file(secure.certificate)
    assert is_trusted(server_cert, [server_cert])
    other, _ = await _self_signed(tmp_path, "other", "urn:other", [ExtendedKeyUsageOID.SERVER_AUTH])
    assert not is_trusted(server_cert, [load_certificate_file(other)])
    ca_key = cert_gen.generate_private_key()
    ca = cert_gen.generate_self_signed_app_certificate(ca_key, "parklink test CA", {}, [], extended=[])
    key = cert_gen.generate_private_key()
    csr = cert_gen.generate_app_certificate_signing_request(
        key,
        "leaf",
        {},
        [x509.UniformResourceIdentifier("urn:leaf")],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    leaf = cert_gen.sign_certificate_request(csr, ca, ca_key)
    assert is_trusted(leaf, [ca]) and not is_trusted(leaf, [server_cert])


async def test_user_certificate_identity(secure: SecureServer, tmp_path: Path) -> None:
    """X509 user identity: the user certificate is presented and accepted."""
    conn = _secured(
        secure,
        tmp_path,
        "Basic256Sha256",
        "SignAndEncrypt",
        username=None,
        password=None,
        user_certificate=str(secure.user_certificate),
        user_private_key=str(secure.user_key),
    )
    async with running(conn, bind(["ns=2;s=S.Value"])) as (_, sink, health):
        await sink.until(lambda: health.up and 0 in sink.latest(), 15, "data with a user certificate")


async def test_no_matching_endpoint_and_anonymous(secure: SecureServer, tmp_path: Path) -> None:
    """A policy/mode the server does not offer, or no security at all, is refused with a reason."""
    conn = _secured(secure, tmp_path, "Aes128_Sha256_RsaOaep", "Sign")
    async with running(conn, bind(["ns=2;s=S.Value"])) as (_, sink, health):
        await sink.until(lambda: health.read_errors >= 1, 10, "a refused attempt")
    assert "no endpoint Aes128_Sha256_RsaOaep/Sign" in health.last_error
    assert "Basic256Sha256/SignAndEncrypt" in health.last_error
    plain = connection(secure.endpoint, timeout=4, pki_dir=str(tmp_path / "plain"))
    async with running(plain, bind(["ns=2;s=S.Value"])) as (_, sink, health):
        await sink.until(lambda: health.read_errors >= 1, 10, "a refused attempt")
    assert "offers no endpoint without security" in health.last_error and not health.up


async def test_pinned_server_certificate(secure: SecureServer, tmp_path: Path) -> None:
    """A configured server_certificate is used as is (no fetch from the endpoint, no trust folder)."""
    conn = _secured(
        secure,
        tmp_path,
        "Basic256Sha256",
        "SignAndEncrypt",
        trusted=False,
        server_certificate=str(secure.certificate),
    )
    async with running(conn, bind(["ns=2;s=S.Value"])) as (_, sink, health):
        await sink.until(lambda: health.up and 0 in sink.latest(), 15, "data")


async def test_server_refuses_our_certificate(secure: SecureServer, tmp_path: Path) -> None:
    """A server that does not trust the generated client certificate: the error names it."""
    secure.client_check.refuse = True
    try:
        conn = _secured(secure, tmp_path, "Basic256Sha256", "SignAndEncrypt")
        async with running(conn, bind(["ns=2;s=S.Value"])) as (_, sink, health):
            await sink.until(lambda: health.read_errors >= 1, 10, "a refused attempt")
            own = tmp_path / "pki" / "own" / "cert.der"
            thumb = x509.load_der_x509_certificate(own.read_bytes()).fingerprint(hashes.SHA1()).hex().upper()
            assert f"client certificate {own} (SHA-1 thumbprint {thumb})" in health.last_error
            assert "BadCertificateUntrusted" in health.last_error
            secure.client_check.refuse = False  # the server's admin trusts it: the next retry works
            await sink.until(lambda: health.up, 10, "up once trusted")
    finally:
        secure.client_check.refuse = False
