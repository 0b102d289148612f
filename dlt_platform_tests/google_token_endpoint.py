"""A loopback stand-in of Google's OAuth 2.0 token endpoint for service accounts, and keys it honours.

Follows Google's "Using OAuth 2.0 for Server to Server Applications" (developers.google.com/identity/protocols/
oauth2/service-account): a POST of the form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`,
the JWT signed RS256 by the service account's private key, with `iss` the account's email, `aud`
https://oauth2.googleapis.com/token, `scope`, and `iat`/`exp` at most an hour apart. The answer is
`{"access_token", "expires_in", "token_type": "Bearer"}`; a refused grant is HTTP 400 with OAuth's
`{"error", "error_description"}`.

Keys generated here (`new_key`) carry this endpoint as their `token_uri`, as Google's own keys carry Google's; the
endpoint knows only the public half of each key, so a key it did not issue is refused ("Invalid JWT Signature.").

Credentials given field by field (dlt's DESTINATION__BIGQUERY__CREDENTIALS__*) carry no token_uri: dlt sends them
to Google's address. For those the endpoint is also an HTTPS proxy (HTTPS_PROXY) that answers CONNECTs to
oauth2.googleapis.com itself, over TLS with a certificate from a throw-away authority (REQUESTS_CA_BUNDLE):
`proxy_env()` gives the variables.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
GOOGLE_TOKEN_HOST = "oauth2.googleapis.com"
MAX_ASSERTION_LIFETIME = 3600


@dataclass
class Grant:
    """A token the endpoint handed out: to whom, for which scope, and how the request came (http or tunnelled)."""
    client_email: str
    scope: str
    via: str


@dataclass
class GoogleTokenEndpoint:
    """Start with `with GoogleTokenEndpoint(tmp_path) as endpoint:`; `grants` lists the tokens handed out."""
    workdir: Path
    grants: list[Grant] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    public_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)

    def __enter__(self) -> GoogleTokenEndpoint:
        self.tls_context, self.ca_bundle = self._tls_for_google_host()
        endpoint = self

        class Handler(TokenRequestHandler):
            owner = endpoint

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="google-token-endpoint", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def proxy_env(self) -> dict[str, str]:
        """Variables that send a process's HTTPS requests for Google's token endpoint here (and nothing else:
        other HTTPS hosts are refused, loopback HTTP goes direct)."""
        proxy = f"http://127.0.0.1:{self.port}"
        return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "REQUESTS_CA_BUNDLE": str(self.ca_bundle)}

    def new_key(self, project_id: str, account: str = "loader", *, registered: bool = True,
                token_uri: str | None = None) -> dict:
        """A service account key JSON as Google hands it out. `registered=False`: a key this endpoint never
        issued (its signature is refused)."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"{account}@{project_id}.iam.gserviceaccount.com"
        if registered:
            self.public_keys[email] = private.public_key()
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": project_id, "private_key_id": secrets.token_hex(8),
                "private_key": pem, "client_email": email, "client_id": str(secrets.randbelow(10**20)),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri or self.token_uri}

    def wait_for_grants(self, count: int, timeout: float = 10.0) -> list[Grant]:
        deadline = time.monotonic() + timeout
        while len(self.grants) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.grants)

    def _tls_for_google_host(self) -> tuple[ssl.SSLContext, Path]:
        """A throw-away certificate authority and a certificate of oauth2.googleapis.com it signed."""
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dlt-platform test authority")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                           crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        host_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        host = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_TOKEN_HOST)]))
                .issuer_name(ca_name).public_key(host_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(GOOGLE_TOKEN_HOST)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca_bundle = self.workdir / "token-endpoint-ca.pem"
        ca_bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain = self.workdir / "token-endpoint-host.pem"
        chain.write_bytes(host.public_bytes(serialization.Encoding.PEM) + host_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context, ca_bundle

    def grant(self, form: dict[str, list[str]], via: str) -> tuple[int, dict]:
        """Google's checks of a JWT-bearer grant, in the order its documentation gives them."""
        if form.get("grant_type") != [JWT_BEARER_GRANT]:
            return self._refuse("unsupported_grant_type", "Invalid grant_type: " + ",".join(form.get("grant_type", [])))
        assertion = (form.get("assertion") or [""])[0]
        parts = assertion.split(".")
        if len(parts) != 3:
            return self._refuse("invalid_request", "Invalid JWT: assertion is not a JWT")
        try:
            header, claims = (json.loads(_b64url_decode(part)) for part in parts[:2])
            signature = _b64url_decode(parts[2])
        except ValueError:
            return self._refuse("invalid_request", "Invalid JWT: not base64url JSON")
        if header.get("alg") != "RS256":
            return self._refuse("invalid_grant", "Invalid JWT: alg must be RS256")
        public_key = self.public_keys.get(claims.get("iss"))
        if public_key is None:
            return self._refuse("invalid_grant", "Invalid grant: account not found")
        try:
            public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self._refuse("invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
            return self._refuse("invalid_grant", "Invalid JWT: aud must be " + GOOGLE_TOKEN_AUDIENCE)
        now, issued, expires = time.time(), claims.get("iat"), claims.get("exp")
        if not (isinstance(issued, int) and isinstance(expires, int) and expires > now
                and 0 < expires - issued <= MAX_ASSERTION_LIFETIME and issued <= now + 300):
            return self._refuse("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                                                 "in a reasonable timeframe. Check your iat and exp values")
        if not claims.get("scope"):
            return self._refuse("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        self.grants.append(Grant(claims["iss"], claims["scope"], via))
        return 200, {"access_token": "ya29." + secrets.token_urlsafe(24), "expires_in": 3599,
                     "token_type": "Bearer"}

    def _refuse(self, error: str, description: str) -> tuple[int, dict]:
        self.refusals.append(f"{error}: {description}")
        return 400, {"error": error, "error_description": description}


class TokenRequestHandler(BaseHTTPRequestHandler):
    owner: GoogleTokenEndpoint
    via = "http"

    def log_message(self, *args) -> None:  # quiet: the test reads `grants` and `refusals`
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.path.split("?", 1)[0] != "/token":
            status, body = 404, {"error": "not_found", "error_description": self.path}
        else:
            status, body = self.owner.grant(form, self.via)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_CONNECT(self) -> None:  # noqa: N802 - http.server's naming
        """An HTTPS proxy's tunnel, answered here: Google's token host only, over this endpoint's TLS."""
        host = self.path.rsplit(":", 1)[0]
        if host != GOOGLE_TOKEN_HOST:
            self.send_error(403, f"the test proxy tunnels only to {GOOGLE_TOKEN_HOST}")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls = self.owner.tls_context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.connection = tls
        self.rfile, self.wfile = tls.makefile("rb"), tls.makefile("wb")
        self.via = "https"
        self.close_connection = False
        while not self.close_connection:
            try:
                self.handle_one_request()
            except (ssl.SSLError, socket.error):
                break
        self.close_connection = True


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
