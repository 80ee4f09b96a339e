"""Channel security and identity of a session: client certificate, server trust, user token.

Layout of a connection's PKI folder (`pki_dir`, default `./pki/<company>/<connection>`):

    own/cert.der        the client certificate, generated on first use (self-signed, 1 year, renewed
    own/key.pem         when expired or when the application URI or host name no longer match)
    trusted/            server certificates (or CA certificates) trusted by this connection
    rejected/           server certificates that were refused, named <SHA-1 thumbprint>.der

A server certificate is trusted when the same certificate is in `trust_dir` (default
`<pki_dir>/trusted`), or when it is issued by a CA certificate found there. The folder is read at
every connect, so dropping a certificate in it takes effect at the next retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import cert_gen, security_policies, uacrypto
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connectors.opcua.config import OpcUaConnection

log = logging.getLogger("parklink.opcua")

POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
MODES = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}
_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


class SecurityError(Exception):
    """A refusal the user must act on (trust a certificate, fix the endpoint); says what to do."""


class UntrustedCertificateError(SecurityError):
    """The server's certificate is not in the trust folder."""

    def __init__(self, message: str, thumbprint: str) -> None:
        super().__init__(message)
        self.thumbprint = thumbprint


@dataclass(frozen=True, slots=True)
class Pki:
    """Where a connection keeps its own certificate and its trusted and rejected server certificates."""

    root: Path
    trusted: Path

    @property
    def certificate(self) -> Path:
        return self.root / "own" / "cert.der"

    @property
    def private_key(self) -> Path:
        return self.root / "own" / "key.pem"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @staticmethod
    def of(conn: OpcUaConnection, company: str, connection: str) -> Pki:
        root = Path(conn.pki_dir) if conn.pki_dir else Path("pki") / (company or "_") / (connection or "_")
        return Pki(root, Path(conn.trust_dir) if conn.trust_dir else root / "trusted")


def default_application_uri() -> str:
    return f"urn:{socket.gethostname()}:parklink"


def thumbprint(cert: x509.Certificate) -> str:
    """The SHA-1 thumbprint OPC UA tools show: 40 upper-case hex digits."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # an identifier, not for security


def subject_of(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def uri_of(cert: x509.Certificate) -> str | None:
    """The application URI in a certificate's SubjectAltName, if any."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def load_certificate_file(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def trusted_certificates(folder: Path) -> list[x509.Certificate]:
    """Every certificate file in the folder (unreadable files are skipped with a debug line)."""
    certificates = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in _CERT_SUFFIXES:
                try:
                    certificates.append(load_certificate_file(path))
                except (OSError, ValueError):
                    log.debug("cannot read certificate %s", path, exc_info=True)
    return certificates


def is_trusted(cert: x509.Certificate, trusted: list[x509.Certificate]) -> bool:
    """The certificate itself is trusted, or a trusted CA issued it."""
    der = cert.public_bytes(Encoding.DER)
    for candidate in trusted:
        if candidate.public_bytes(Encoding.DER) == der:
            return True
        if candidate.subject == cert.issuer and candidate != cert:
            try:
                cert.verify_directly_issued_by(candidate)
                return True
            except (ValueError, TypeError, InvalidSignature):
                continue
    return False


def check_server_certificate(cert: x509.Certificate, pki: Pki) -> None:
    """Raise SecurityError unless the certificate is current and trusted; keep a refused one."""
    now = dt.datetime.now(dt.UTC)
    name, thumb = subject_of(cert), thumbprint(cert)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SecurityError(
            f"server certificate {name!r} (SHA-1 thumbprint {thumb}) is outside its validity "
            f"{cert.not_valid_before_utc:%Y-%m-%d} .. {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    if is_trusted(cert, trusted_certificates(pki.trusted)):
        return
    kept = pki.rejected / f"{thumb}.der"
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(cert.public_bytes(Encoding.DER))
        how = f"copy {kept} into {pki.trusted}/ to trust it"
    except OSError:
        how = f"put the server's certificate into {pki.trusted}/ to trust it"
    raise UntrustedCertificateError(
        f"server certificate {name!r} (SHA-1 thumbprint {thumb}) is not trusted: {how}", thumb
    )


async def own_certificate(client: Client, conn: OpcUaConnection, pki: Pki) -> tuple[Path, Path]:
    """The client certificate and key files; generated under pki_dir when the config names none.

    Sets the client's application URI to match the certificate's SubjectAltName (servers check it).
    """
    if conn.certificate and conn.private_key:
        cert = load_certificate_file(Path(conn.certificate))
        client.application_uri = conn.application_uri or uri_of(cert) or default_application_uri()
        return Path(conn.certificate), Path(conn.private_key)
    client.application_uri = conn.application_uri or default_application_uri()
    pki.certificate.parent.mkdir(parents=True, exist_ok=True)
    existed = pki.certificate.is_file()
    await cert_gen.setup_self_signed_certificate(
        pki.private_key,
        pki.certificate,
        client.application_uri,
        socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"organizationName": "parklink"},
    )
    pki.private_key.chmod(0o600)  # the generator writes with the process umask: the key is ours alone
    if not existed:
        cert = load_certificate_file(pki.certificate)
        log.warning(
            "generated client certificate %s (SHA-1 thumbprint %s, URI %s): servers that check client "
            "certificates must trust it",
            pki.certificate,
            thumbprint(cert),
            client.application_uri,
        )
    return pki.certificate, pki.private_key


async def server_certificate(client: Client, conn: OpcUaConnection) -> x509.Certificate:
    """The configured (pinned) server certificate, else the one of the endpoint with our policy and mode."""
    if conn.server_certificate:
        return load_certificate_file(Path(conn.server_certificate))
    policy, mode = POLICIES[conn.security_policy], MODES[conn.security_mode]
    endpoints = await client.connect_and_get_server_endpoints()
    for endpoint in endpoints:
        if endpoint.SecurityPolicyUri == policy.URI and endpoint.SecurityMode == mode:
            certificate = x509_from_chain(endpoint.ServerCertificate)
            if certificate is None:
                raise SecurityError(f"the {conn.security_policy} endpoint has no server certificate")
            return certificate
    offered = ", ".join(
        sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints})
    )
    wanted = f"{conn.security_policy}/{conn.security_mode}"
    raise SecurityError(f"the server has no endpoint {wanted}; it offers {offered}")


def x509_from_chain(der: bytes | None) -> x509.Certificate | None:
    """The first (leaf) certificate of a DER certificate or chain."""
    load: Any = uacrypto.x509_from_der  # untyped in asyncua
    certificate: x509.Certificate | None = load(der)
    return certificate


async def secure(client: Client, conn: OpcUaConnection, pki: Pki) -> Path | None:
    """Configure channel security (when a policy is set) and the user identity, before connect().

    Returns the client certificate file in use (None without security)."""
    if conn.username is not None:
        client.set_user(conn.username)
    if conn.password is not None:
        client.set_password(conn.password.get_secret_value())
    if conn.user_certificate and conn.user_private_key:
        await client.load_client_certificate(conn.user_certificate)
        await client.load_private_key(Path(conn.user_private_key))
    if conn.security_policy == "None":
        return None
    certificate, private_key = await own_certificate(client, conn, pki)
    server = await server_certificate(client, conn)
    if not conn.server_certificate:  # a configured certificate is pinned: trusted by the config
        check_server_certificate(server, pki)
    password = conn.private_key_password.get_secret_value() if conn.private_key_password else None
    await client.set_security(
        POLICIES[conn.security_policy],
        str(certificate),
        str(private_key),
        password,
        server.public_bytes(Encoding.DER),
        MODES[conn.security_mode],
    )
    return certificate


# What servers answer when they do not (yet) trust the client's certificate.
CLIENT_REFUSED = frozenset(
    {0x801A0000, 0x80130000, 0x80120000}  # BadCertificateUntrusted, BadSecurityChecksFailed, …Invalid
)


def client_refused(certificate: Path, code: int, name: str) -> SecurityError:
    """The server refused our certificate: say which one, and where to trust it."""
    try:
        thumb = thumbprint(load_certificate_file(certificate))
    except (OSError, ValueError):
        thumb = "unreadable"
    return SecurityError(
        f"the server refused parklink's client certificate {certificate} (SHA-1 thumbprint {thumb}): {name}; "
        "trust it on the server (often: move it from the server's rejected to its trusted certificates)"
    )
