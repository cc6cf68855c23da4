"""The passive-mode FTP server (``ftpd.py``) driven by ``ftplib.FTP``."""

from __future__ import annotations

import ftplib
import io

import pytest

from .conftest import VARIANTS, Backend
from .ftpd import FTPServer

README = b"Files served by the simnet apps suite.\r\n"
BIG = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
UPLOAD = b"".join(b"uploaded line %05d\n" % i for i in range(8000))  # 160,000 bytes
FILES = {"readme.txt": README, "big.bin": BIG}
USERS = {"alice": "wonderland"}


def ftp_session(backend: Backend, host: str = "127.0.0.1") -> None:
    """Log in, list, download, upload, download the upload again, quit --
    each transfer on its own passive data connection (PASV on IPv4, EPSV on
    IPv6)."""
    channels: dict = {}
    with backend.network():
        server = FTPServer((host, 0), channels, FILES, USERS)
        port = server.address[1]
        with backend.serving(channels):
            ftp = ftplib.FTP(timeout=10)
            assert ftp.connect(host, port).startswith("220 ")
            with pytest.raises(ftplib.error_perm, match="^530 "):
                ftp.login("alice", "wrong")
            assert ftp.login("alice", "wonderland") == "230 User alice logged in"
            assert ftp.pwd() == "/"
            assert ftp.nlst() == ["big.bin", "readme.txt"]
            listing: list[str] = []
            assert ftp.retrlines("LIST", listing.append).startswith("226 ")
            assert [line.split()[-1] for line in listing] == ["big.bin", "readme.txt"]
            assert [int(line.split()[4]) for line in listing] == [len(BIG), len(README)]
            chunks: list[bytes] = []
            assert ftp.retrbinary("RETR big.bin", chunks.append).startswith("226 ")
            assert b"".join(chunks) == BIG
            assert ftp.storbinary("STOR upload.bin", io.BytesIO(UPLOAD), blocksize=4096).startswith("226 ")
            chunks = []
            ftp.retrbinary("RETR upload.bin", chunks.append)
            assert b"".join(chunks) == UPLOAD
            with pytest.raises(ftplib.error_perm, match="^550 "):
                ftp.retrbinary("RETR missing.bin", chunks.append)
            assert ftp.quit() == "221 Goodbye"
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
        backend.assert_the_mix_acted()
        assert server.files["upload.bin"] == UPLOAD
        commands = [entry[1] for entry in server.log if entry[0] == "command"]
        passive = "PASV" if host == "127.0.0.1" else "EPSV"
        assert commands == ["USER", "PASS", "USER", "PASS", "PWD",
                            "TYPE", passive, "NLST", "TYPE", passive, "LIST",
                            "TYPE", passive, "RETR", "TYPE", passive, "STOR",
                            "TYPE", passive, "RETR", "TYPE", passive, "RETR", "QUIT"]


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_ftplib_login_list_retrieve_store_over_pasv(backend: Backend) -> None:
    ftp_session(backend)


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_ftplib_over_ipv6_uses_epsv(backend: Backend) -> None:
    ftp_session(backend, host="::1")
