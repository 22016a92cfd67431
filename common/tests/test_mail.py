"""Mail leaves through the "smtp" breaker: delivered to a real SMTP server, never a 500 without one."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest
from django.core.mail import send_mail

from common.breaker import get_breaker


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept messages; what arrives is kept on the server."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                self.wfile.write(b"250 test\r\n")
            elif command == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = b""
                while (chunk := self.rfile.readline()) and chunk != b".\r\n":
                    data += chunk
                self.server.received.append(data.decode())
                self.wfile.write(b"250 queued\r\n")
            elif command == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def guarded_smtp(settings):
    settings.EMAIL_BACKEND = "common.mail.GuardedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_TIMEOUT = 2
    get_breaker("smtp").reset()
    yield settings
    get_breaker("smtp").reset()


def test_mail_reaches_a_real_smtp_server(guarded_smtp, smtp_server):
    guarded_smtp.EMAIL_PORT = smtp_server.server_address[1]
    sent = send_mail("Tiket Anda", "Kode: ABCD-EFGH", None, ["a@student.itera.ac.id"])
    assert sent == 1
    assert len(smtp_server.received) == 1
    assert "Kode: ABCD-EFGH" in smtp_server.received[0]
    assert get_breaker("smtp").state == "closed"


def test_dead_smtp_server_never_raises_and_opens_the_breaker(guarded_smtp):
    guarded_smtp.EMAIL_PORT = _closed_port()
    breaker = get_breaker("smtp")
    for _ in range(breaker.failure_threshold):
        assert send_mail("s", "b", None, ["a@student.itera.ac.id"]) == 0
    assert breaker.state == "open"
    started = time.perf_counter()
    assert send_mail("s", "b", None, ["a@student.itera.ac.id"]) == 0
    assert time.perf_counter() - started < 0.05, "an open breaker must not touch the network"


@pytest.mark.django_db
def test_sign_up_with_smtp_down_still_succeeds(guarded_smtp, client):
    from django.contrib.auth import get_user_model

    guarded_smtp.EMAIL_PORT = _closed_port()
    response = client.post(
        "/accounts/signup/",
        {
            "full_name": "Budi Mahasiswa",
            "nim": "121140777",
            "email": "budi@student.itera.ac.id",
            "password1": "Lautan-biru-2026",
            "password2": "Lautan-biru-2026",
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(nim="121140777", email_verified_at__isnull=True).exists()
