"""Servers the deployment tests start: a PgBouncer, and PostgreSQL clusters of their own.

Each listens on loopback only and is stopped by the test that started it. PostgreSQL and
PgBouncer refuse to run as root; as root (on CI) they run as an unprivileged system user:
the embedded server's own, which also owns the clusters' files.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

# pgserver carries the PostgreSQL 16 binaries and runs them as its system user when root.
from pgserver import _commands
from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

from faceplate_models.config import DatabaseTarget

SYSTEM_USER = "pgserver" if os.geteuid() == 0 else None
PGBOUNCER_MISSING = (
    "PgBouncer is not installed; these tests need the real one: "
    "`sudo apt-get install -y pgbouncer` (CI installs it and runs them)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _own(path: Path) -> None:
    """Give `path` to the servers' system user, so that a server run as it can use it."""
    if SYSTEM_USER is not None:
        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(path)
        entry = pwd.getpwnam(SYSTEM_USER)
        for item in [path, *path.rglob("*")]:
            os.chown(item, entry.pw_uid, entry.pw_gid)


async def wait_for_port(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def system_postgres() -> Path:
    """The bin directory of the machine's own PostgreSQL, built with TLS (the embedded one is
    not); the tests that need it skip, saying so, without one, and fail on CI."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        message = (
            "no PostgreSQL with TLS on this machine (the embedded one has none): "
            "`sudo apt-get install -y postgresql` (CI has one and runs these tests)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found[-1].parent


class Cluster:
    """A PostgreSQL cluster of the test's own, listening on a free loopback port.

    `bindir` holds its binaries: the embedded package's PostgreSQL 16 by default.
    """

    def __init__(self, root: Path, bindir: Path = _commands.POSTGRES_BIN_PATH) -> None:
        self.root = root
        self.bindir = bindir
        self.data = root / "data"
        self.port = free_port()

    def run(self, program: str, *args: str) -> str:
        """Run one of the cluster's programs as the servers' user."""
        done = subprocess.run(
            [str(self.bindir / program), *args],
            check=True,
            capture_output=True,
            text=True,
            user=SYSTEM_USER,
            timeout=60,
        )
        return done.stdout

    def init(self) -> Cluster:
        self.data.mkdir(parents=True)
        _own(self.root)
        self.run(
            "initdb", "-D", str(self.data), "--auth=trust", "--encoding=utf8", "-U", "postgres"
        )
        return self

    def configure(self, **settings: Any) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = '{value}'\n")

    def allow(self, *lines: str) -> None:
        """Replace pg_hba.conf with `lines` (local connections stay trusted)."""
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nlocal replication all trust\n" + "\n".join(lines) + "\n"
        )

    def start(self) -> None:
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.data}",
            "-l",
            str(self.root / "log"),
            "start",
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def target(
        self,
        database: str = "postgres",
        *,
        host: str = "127.0.0.1",
        user: str = "postgres",
        ssl: str | None = None,
        sslrootcert: str | None = None,
        sslcert: str | None = None,
        sslkey: str | None = None,
    ) -> DatabaseTarget:
        return DatabaseTarget(
            host, self.port, database, user, None, ssl, sslrootcert, sslcert, sslkey
        )

    def psql(self, sql: str) -> str:
        """Run `sql` as the superuser, over the cluster's socket."""
        return self.run(
            "psql",
            "-h",
            str(self.data),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        )


class PgBouncer:
    """A real PgBouncer in front of `upstream`, in transaction mode unless told otherwise."""

    def __init__(self, upstream: DatabaseTarget, root: Path, *, users: list[str]) -> None:
        self.upstream = upstream
        self.root = root
        self.users = users
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, pool_mode: str = "transaction") -> PgBouncer:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            if os.environ.get("CI"):
                pytest.fail(PGBOUNCER_MISSING)
            pytest.skip(PGBOUNCER_MISSING)
        self.root.mkdir(parents=True, exist_ok=True)
        up = self.upstream
        (self.root / "users.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        (self.root / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={up.host} port={up.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.root / "users.txt"}
pool_mode = {pool_mode}
max_client_conn = 500
default_pool_size = 20
logfile = {self.root / "pgbouncer.log"}
"""
        )
        # PgBouncer will not run as root; as root it runs as the user that owns the
        # upstream's socket directory (the embedded server's), or the servers' user.
        user: list[str] = []
        if os.geteuid() == 0:
            owner = (
                pwd.getpwuid(os.stat(up.host).st_uid).pw_name
                if up.host.startswith("/")
                else (SYSTEM_USER or "nobody")
            )
            _own(self.root)
            os.chown(self.root, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
            for item in self.root.iterdir():
                os.chown(item, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
            user = ["-u", owner]
        self.process = subprocess.Popen(
            [binary, *user, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def target(self, database: str, user: str = "postgres") -> DatabaseTarget:
        return DatabaseTarget("127.0.0.1", self.port, database, user)


def certificate_authority(name: str) -> tuple[Any, Any]:
    """A self-signed CA: (key, certificate)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(key, _sha256())
    )
    return key, cert


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def issue(ca: tuple[Any, Any], name: str, *, dns: list[str] | None = None) -> tuple[Any, Any]:
    """A certificate for `name` (a host, with `dns` names, or a client) signed by `ca`."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    return key, builder.sign(ca_key, _sha256())


def write_pem(folder: Path, name: str, key: Any, cert: Any) -> tuple[Path, Path]:
    """Write `name`.key (mode 0600, as PostgreSQL insists) and `name`.crt; return both paths."""
    from cryptography.hazmat.primitives import serialization

    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def replicable(root: Path) -> Cluster:
    """A started cluster that lets clients and streaming standbys in over loopback."""
    primary = Cluster(root).init()
    primary.allow("host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust")
    primary.start()
    return primary


def standby_of(primary: Cluster, root: Path) -> Cluster:
    """A streaming standby of `primary` (whose pg_hba must let replication in), made with
    `pg_basebackup -R`; not started."""
    standby = Cluster(root, primary.bindir)
    root.mkdir(parents=True)
    _own(root)
    standby.run(
        "pg_basebackup",
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        str(standby.data),
        "-R",
        "-X",
        "stream",
    )
    return standby
