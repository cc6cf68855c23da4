"""The SMTP server (``smtpd.py``) driven by ``smtplib.SMTP``."""

from __future__ import annotations

import smtplib

import pytest

from .conftest import VARIANTS, Backend
from .smtpd import SMTPServer

SHORT = "Subject: hello\r\n\r\nA short note.\r\n"
#: dots at the start of lines (smtplib stuffs them, the server unstuffs them),
#: a lone dot line, and enough text to need many sends and reads
DOTTED = ("Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n"
          + "".join(f"line {i:05d}: some text to make the message long\r\n" for i in range(4000))
          + ".last line starts with a dot")


def smtp_session(backend: Backend, bind: str = "127.0.0.1", timeout: float | None = 10) -> None:
    """Two sessions: EHLO with two messages (one recipient refused, RSET and
    NOOP in between), then HELO with one message; both end with QUIT.

    The server listens on *bind* (``""``: all interfaces) and the client
    connects to the address the listener reports (``0.0.0.0`` for ``""``, a
    common pattern in tests). With *timeout* None the client's sockets
    are blocking, as in ``smtplib.SMTP(host, port)``."""
    extra = {} if timeout is None else {"timeout": timeout}
    channels: dict = {}
    with backend.network():
        server = SMTPServer((bind, 0), channels, domains={"example.org"})
        host, port = server.address[:2]
        with backend.serving(channels):
            with smtplib.SMTP(host, port, local_hostname="client.example", **extra) as smtp:
                code, text = smtp.ehlo()
                assert code == 250 and smtp.has_extn("size") and smtp.has_extn("8bitmime")
                assert text.startswith(b"mail.example greets client.example [127.0.0.1]")
                refused = smtp.sendmail("alice@example.org", ["bob@example.org", "eve@elsewhere.net"], SHORT)
                assert list(refused) == ["eve@elsewhere.net"] and refused["eve@elsewhere.net"][0] == 550
                assert smtp.noop() == (250, b"2.0.0 OK")
                assert smtp.rset() == (250, b"2.0.0 OK")
                assert smtp.sendmail("alice@example.org", ["bob@example.org", "carol@example.org"], DOTTED) == {}
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    smtp.sendmail("alice@example.org", ["mallory@elsewhere.net"], SHORT)
            # the with block sent QUIT
            smtp = smtplib.SMTP(**extra)
            assert smtp.connect(host, port)[0] == 220
            assert smtp.helo("old.client.example")[0] == 250
            assert smtp.sendmail("dave@example.org", "bob@example.org", SHORT.encode()) == {}
            assert smtp.quit()[0] == 221
        backend.run_until(lambda: len(channels) == 1, channels)
        server.close()
        backend.assert_the_mix_acted()
        assert server.peers == [("127.0.0.1", "127.0.0.1")] * 2  # as Linux loopback has it
        assert server.messages == [
            ("alice@example.org", ["bob@example.org"], SHORT[:-2].encode()),
            ("alice@example.org", ["bob@example.org", "carol@example.org"], DOTTED.encode()),
            ("dave@example.org", ["bob@example.org"], SHORT[:-2].encode()),
        ]
        assert server.log == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "NOOP", "RSET",
                              "MAIL", "RCPT", "RCPT", "DATA", "MAIL", "RCPT", "RSET", "QUIT",
                              "HELO", "MAIL", "RCPT", "DATA", "QUIT"]


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_smtplib_ehlo_helo_sendmail_with_dot_stuffing(backend: Backend) -> None:
    smtp_session(backend)


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_smtplib_to_a_server_bound_to_all_interfaces(backend: Backend) -> None:
    smtp_session(backend, bind="")


@pytest.mark.parametrize("backend", VARIANTS, indirect=True)
def test_smtplib_with_blocking_sockets(backend: Backend) -> None:
    """``smtplib.SMTP(host, port)``: no timeout, the client's sockets block
    (on real loopback the suite's watchdog bounds the test)."""
    smtp_session(backend, timeout=None)
