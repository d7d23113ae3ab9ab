"""monitor-docker.py against a real journald (started when absent, as root) and a real SMTP server (aiosmtpd);
last, following the service's own container on the real engine."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import create_engine, make_url, text

from tests.docker.conftest import wait_for_health, wait_until
from tests.scripts import load_script
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.repository


monitor = load_script("monitor-docker.py", "monitor_docker")


def line(level: str, text: str) -> str:
    return f"2026-11-26 07:00:00,000 {level} app [-] {text}"


# Unit tests of the parser and the classifier: no journald needed.


def journal_json(message: object, priority: int = 3, cursor: str = "c1", microseconds: int = 1_000_000) -> str:
    return json.dumps(
        {"__CURSOR": cursor, "__REALTIME_TIMESTAMP": str(microseconds), "PRIORITY": str(priority), "MESSAGE": message}
    )


def test_a_message_that_is_not_utf8_comes_as_bytes_and_is_decoded() -> None:
    raw = [*b"ERROR caf", 0xE9, 0xFF]
    entry = monitor.parse_entry(journal_json(raw))
    assert entry.message == "ERROR caf\ufffd\ufffd"
    assert entry.level is None


def test_the_level_comes_from_the_line_before_the_priority() -> None:
    classifier = monitor.Classifier({"ERROR", "CRITICAL"})
    assert classifier.level(monitor.parse_entry(journal_json(line("INFO", "fine"), priority=3))) == "INFO"
    assert (
        classifier.level(monitor.parse_entry(journal_json("segfault", priority=3, microseconds=9_000_000))) == "ERROR"
    )
    assert classifier.level(monitor.parse_entry(journal_json("hello", priority=6, microseconds=20_000_000))) == "INFO"


def test_traceback_lines_continue_the_error_before_them() -> None:
    classifier = monitor.Classifier({"ERROR", "CRITICAL"})
    entries = [
        journal_json(line("ERROR", "unhandled error"), priority=3, microseconds=1_000_000),
        journal_json("Traceback (most recent call last):", priority=6, microseconds=1_000_100),
        journal_json("RuntimeError: boom", priority=6, microseconds=1_000_200),
        journal_json("later, unrelated", priority=6, microseconds=9_000_000),
    ]
    assert [classifier.level(monitor.parse_entry(entry)) for entry in entries] == ["ERROR", "ERROR", "ERROR", "INFO"]


# The daemon for real.


def write_journal(container: str, message: str, priority: int = 3) -> None:
    """An entry with the fields docker's journald log driver writes."""
    fields = f"CONTAINER_NAME={container}\nPRIORITY={priority}\nSYSLOG_IDENTIFIER={container}\nMESSAGE={message}\n"
    subprocess.run(["logger", "--journald"], input=fields, text=True, check=True)


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"

    def bodies(self) -> list[str]:
        return [message.get_content() for message in self.messages]

    def alert_lines(self) -> list[str]:
        """The service's lines in the emails, without the journal time and level the monitor puts first."""
        return [text.split(" ", 3)[3] for body in self.bodies() for text in body.splitlines() if " app [-] " in text]


def start_smtp(port: int, inbox: Inbox, **options: object) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = start_smtp(port, inbox)
    yield port, inbox
    controller.stop()


@pytest.fixture
def container() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def run_monitor(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(container: str, port: int, *options: str, **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "monitor-docker.py"), container, "127.0.0.1", "ops@example.test",
             "--smtp-port", str(port), "--state-file", str(tmp_path / "state.json"), "--window", "0.5", *options],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **env},
        )  # fmt: skip
        started.append(process)
        time.sleep(1.0)  # journalctl is following from now on
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_help_lists_the_spec_arguments() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "monitor-docker.py"), "--help"], capture_output=True, text=True)
    for word in ("CONTAINER_NAME", "SMTP_SERVER", "EMAIL", "--password", "--print", "--smtp-port", "--is-secure",
                 "--notify-warning"):  # fmt: skip
        assert word in result.stdout


@pytest.mark.usefixtures("journald")
def test_only_errors_are_mailed_by_default_with_their_traceback(container, smtp, run_monitor) -> None:
    port, inbox = smtp
    process = run_monitor(container, port, "--print", "--window", "3")
    write_journal(container, line("INFO", "GET / 200"))
    write_journal(container, line("WARNING", "refused login"))
    write_journal(container, line("ERROR", "unhandled error"))
    write_journal(container, "Traceback (most recent call last):")
    write_journal(container, 'RuntimeError: "boom"')
    wait_until(lambda: len(inbox.messages) == 1)
    time.sleep(1)
    status, printed, _ = stop(process)
    assert status == 0
    (message,) = inbox.messages
    assert message["Subject"] == f"[{container}] ERROR: 3 log lines"
    assert message["From"] == message["To"] == "ops@example.test"
    body = message.get_content()
    assert "unhandled error" in body and "Traceback (most recent call last):" in body and 'RuntimeError: "boom"' in body
    assert "refused login" not in body and "GET / 200" not in body
    assert "GET / 200" in printed  # --print echoes every line


@pytest.mark.usefixtures("journald")
def test_warnings_are_mailed_with_notify_warning(container, smtp, run_monitor) -> None:
    port, inbox = smtp
    process = run_monitor(container, port, "--notify-warning")
    write_journal(container, line("WARNING", "refused login from 127.0.0.1"))
    wait_until(lambda: len(inbox.messages) == 1)
    stop(process)
    assert inbox.messages[0]["Subject"] == f"[{container}] WARNING: 1 log line"


@pytest.mark.usefixtures("journald")
def test_a_burst_of_a_thousand_errors_is_a_few_emails_accounting_for_all(container, smtp, run_monitor) -> None:
    port, inbox = smtp
    process = run_monitor(container, port, "--window", "2")
    for number in range(1000):
        write_journal(container, line("ERROR", f"storm {number}"))
    wait_until(lambda: len(inbox.alert_lines()) == 1000, seconds=60)
    stop(process)
    assert len(inbox.messages) <= 5
    counts = [int(message["Subject"].split(": ")[1].split()[0]) for message in inbox.messages]
    assert sum(counts) == 1000
    assert sorted(inbox.alert_lines()) == sorted(line("ERROR", f"storm {n}") for n in range(1000))


@pytest.mark.usefixtures("journald")
def test_every_alert_arrives_once_when_the_smtp_server_was_down_for_a_while(container, run_monitor) -> None:
    inbox, port = Inbox(), free_port()
    process = run_monitor(container, port)
    for number in range(3):
        write_journal(container, line("ERROR", f"while down {number}"))
    wait_until(lambda: "cannot send the alert email" in (process.stderr.readline() or ""), seconds=20)
    controller = start_smtp(port, inbox)
    try:
        write_journal(container, line("ERROR", "after it came back"))
        wait_until(lambda: len(inbox.alert_lines()) == 4, seconds=30)
        time.sleep(2)
        stop(process)
    finally:
        controller.stop()
    assert sorted(inbox.alert_lines()) == sorted(
        [line("ERROR", f"while down {n}") for n in range(3)] + [line("ERROR", "after it came back")]
    )


@pytest.mark.usefixtures("journald")
def test_a_killed_monitor_resumes_where_it_was_without_repeats(container, smtp, run_monitor) -> None:
    port, inbox = smtp
    process = run_monitor(container, port)
    for number in range(5):
        write_journal(container, line("ERROR", f"before {number}"))
    wait_until(lambda: len(inbox.alert_lines()) == 5)
    time.sleep(0.5)
    process.kill()
    process.wait()
    for number in range(5):
        write_journal(container, line("ERROR", f"while dead {number}"))
    restarted = run_monitor(container, port)
    wait_until(lambda: len(inbox.alert_lines()) >= 10)
    time.sleep(1.5)
    stop(restarted)
    expected = [line("ERROR", f"before {n}") for n in range(5)] + [line("ERROR", f"while dead {n}") for n in range(5)]
    assert sorted(inbox.alert_lines()) == sorted(expected)


@pytest.mark.usefixtures("journald")
def test_journalctl_exiting_is_restarted_from_the_cursor(container, smtp, run_monitor) -> None:
    port, inbox = smtp
    process = run_monitor(container, port)
    write_journal(container, line("ERROR", "first"))
    wait_until(lambda: len(inbox.alert_lines()) == 1)
    subprocess.run(["pkill", "-f", f"journalctl --follow .*CONTAINER_NAME={container}"], check=True)
    write_journal(container, line("ERROR", "while journalctl was away"))
    wait_until(lambda: len(inbox.alert_lines()) == 2)
    time.sleep(1.5)
    stop(process)
    assert sorted(inbox.alert_lines()) == sorted([line("ERROR", "first"), line("ERROR", "while journalctl was away")])


@pytest.mark.usefixtures("journald")
def test_starttls_and_login_with_is_secure(container, run_monitor, tmp_path: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server, session, envelope, mechanism, data) -> AuthResult:
        if isinstance(data, LoginPassword):
            logins.append((data.login, data.password))
        return AuthResult(success=isinstance(data, LoginPassword) and data.password == b"s3cret")

    inbox, port = Inbox(), free_port()
    controller = start_smtp(
        port, inbox, tls_context=context, require_starttls=True, authenticator=authenticate, auth_require_tls=True
    )
    try:
        process = run_monitor(
            container, port, "--is-secure", MONITOR_SMTP_PASSWORD="s3cret", SSL_CERT_FILE=str(tmp_path / "cert.pem")
        )
        write_journal(container, line("ERROR", "over TLS"))
        wait_until(lambda: len(inbox.messages) == 1)
        stop(process)
    finally:
        controller.stop()
    assert logins == [(b"ops@example.test", b"s3cret")]


# The service's own container on the real engine, logging to journald.


@pytest.fixture
def outage_database(postgres_url: str) -> Iterator[tuple[str, Callable[[bool], None]]]:
    """(URL, switch) of a database of its own on the local PostgreSQL; switch(False) makes it refuse
    connections and ends the open ones, as an outage would; switch(True) ends the outage."""
    server = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"monitored_{uuid.uuid4().hex[:8]}"
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))

    def switch(allowed: bool) -> None:
        with server.connect() as connection:
            connection.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {str(allowed).lower()}"))
            if not allowed:
                connection.execute(
                    text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                )

    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False), switch
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    server.dispose()


@pytest.mark.docker
@pytest.mark.usefixtures("journald")
def test_the_service_container_mails_its_error_once_and_nothing_for_a_start_or_a_stop(
    image: str, container_name: str, smtp, run_monitor, outage_database
) -> None:
    port, inbox = smtp
    database_url, switch_database = outage_database
    name = container_name
    web_port = free_port()
    url = f"http://127.0.0.1:{web_port}"
    process = run_monitor(name, port, "--window", "2")
    # The host's network, so that the container reaches the PostgreSQL on the host's loopback.
    subprocess.run(
        ["docker", "run", "--detach", "--name", name, "--network", "host", "--log-driver", "journald",
         "--env", f"PORT={web_port}", "--env", f"DATABASE_URL={database_url}",
         "--env", "SESSION_PASSWORD=monitored", image],
        check=True, capture_output=True,
    )  # fmt: skip
    wait_for_health(url)
    time.sleep(4)  # longer than the window: a healthy start has had its chance to mail
    assert inbox.messages == []

    token = requests.post(f"{url}/api/login", json={"session_password": "monitored"}, timeout=5).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    answer = requests.post(f"{url}/api/recommend", json={"age": 30, "gender": "F", "occupation": "writer"},
                           headers=headers, timeout=5).json()  # fmt: skip
    switch_database(False)
    score = {"id": answer["id"], "movie": answer["recommendations"][0], "score": 4}
    assert requests.post(f"{url}/api/recommend/score", json=score, headers=headers, timeout=10).status_code == 503
    wait_until(lambda: len(inbox.messages) == 1, seconds=30)
    switch_database(True)

    subprocess.run(["docker", "stop", name], check=True, capture_output=True)
    time.sleep(4)
    status, _, _ = stop(process)
    assert status == 0
    (message,) = inbox.messages
    assert message["Subject"] == f"[{name}] ERROR: 1 log line"
    assert "ERROR app [" in message.get_content() and "database unavailable" in message.get_content()
