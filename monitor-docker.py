#!/usr/bin/env python3
"""Follow a container's logs in journald and email the operator its ERROR (and WARNING) lines.

monitor-docker.py CONTAINER_NAME SMTP_SERVER EMAIL [--password P] [--print] [--smtp-port 25]
  [--is-secure] [--notify-warning] [--state-file PATH] [--window SECONDS]

Alerts within a window go out as one email. The journal cursor of the last line
handled is kept in a state file, so a restarted monitor resumes after it: no line
is missed and none is mailed twice. SMTP failures are retried with backoff.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import queue
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

# The service's line format: "2026-11-26 06:13:07,135 ERROR app [request id] message".
LEVEL_IN_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
# journald priorities: 0-3 are errors, 4 a warning. Docker gives every stderr line 3.
PRIORITY_LEVELS = {0: "CRITICAL", 1: "CRITICAL", 2: "CRITICAL", 3: "ERROR", 4: "WARNING"}
# A line without a level this soon after an alert line continues it (a traceback).
CONTINUATION_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0
MAX_LINES_SHOWN = 1000
STATE_SAVE_SECONDS = 1.0


@dataclass(frozen=True)
class Entry:
    cursor: str
    time: datetime
    message: str
    priority: int
    level: str | None  # from the line itself, when it has one


def parse_entry(line: str) -> Entry:
    """One line of `journalctl -o json`; MESSAGE is an array of bytes when it is not UTF-8."""
    record = json.loads(line)
    message = record.get("MESSAGE", "")
    if isinstance(message, list):
        message = bytes(message).decode("utf-8", errors="replace")
    microseconds = int(record.get("__REALTIME_TIMESTAMP", "0"))
    found = LEVEL_IN_LINE.match(message)
    return Entry(
        cursor=record["__CURSOR"],
        time=datetime.fromtimestamp(microseconds / 1e6, UTC),
        message=message.rstrip("\n"),
        priority=int(record.get("PRIORITY", 6)),
        level=found.group(1) if found else None,
    )


class Classifier:
    """The level of each line: its own, the alert it continues (a traceback), or its journald priority."""

    def __init__(self, alert_levels: set[str]) -> None:
        self.alert_levels = alert_levels
        self._previous: tuple[Entry, str] | None = None

    def level(self, entry: Entry) -> str:
        if entry.level is not None:
            level = entry.level
        elif self._continues_alert(entry):
            level = self._previous[1]
        else:
            level = PRIORITY_LEVELS.get(entry.priority, "INFO")
        self._previous = (entry, level)
        return level

    def _continues_alert(self, entry: Entry) -> bool:
        if self._previous is None:
            return False
        previous, level = self._previous
        close = (entry.time - previous.time).total_seconds() <= CONTINUATION_SECONDS
        return level in self.alert_levels and close


class State:
    """The cursor of the last line handled, in a file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursor = json.loads(path.read_text()).get("cursor") if path.exists() else None
        self._saved_at = 0.0

    def save(self, cursor: str | None, *, throttle: bool = False) -> None:
        """Record cursor as handled; with throttle, write the file at most once a STATE_SAVE_SECONDS."""
        if cursor is None or cursor == self.cursor:
            return
        if throttle and time.monotonic() - self._saved_at < STATE_SAVE_SECONDS:
            return
        self.cursor = cursor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"cursor": cursor}))
        os.replace(temporary, self.path)
        self._saved_at = time.monotonic()


class Follower:
    """journalctl -f as a child process, restarted after the last cursor read whenever it exits."""

    ENDED = object()

    def __init__(self, container: str, cursor: str | None, lines: queue.Queue) -> None:
        self.container = container
        self.cursor = cursor
        self.lines = lines
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # With no cursor, follow from the journal's end: `--lines 0` would be the obvious way, but
        # journalctl then misses the first entries that match when none matched before (systemd 252).
        self.cursor = self.cursor or journal_end()
        command = ["journalctl", "--follow", "--output", "json", "--no-pager", f"CONTAINER_NAME={self.container}"]
        command += ["--after-cursor", self.cursor] if self.cursor else []
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, errors="replace")
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if line.strip():
                self.lines.put(line)
        process.wait()
        self.lines.put(self.ENDED)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def journal_end() -> str | None:
    """The cursor of the newest entry in the whole journal (None when it is empty)."""
    newest = subprocess.run(
        ["journalctl", "--lines", "1", "--output", "json", "--no-pager"], capture_output=True, text=True
    ).stdout.strip()
    return json.loads(newest)["__CURSOR"] if newest else None


class Mailer:
    def __init__(self, args: argparse.Namespace, password: str | None) -> None:
        self.args = args
        self.password = password

    def send(self, alerts: list[tuple[Entry, str]]) -> None:
        levels = [level for _, level in alerts]
        worst = "ERROR" if any(level in ("ERROR", "CRITICAL") for level in levels) else "WARNING"
        message = EmailMessage()
        message["Subject"] = f"[{self.args.container_name}] {worst}: {len(alerts)} log line{'s' * (len(alerts) > 1)}"
        message["From"] = message["To"] = self.args.email
        shown = [f"{entry.time:%Y-%m-%d %H:%M:%S}Z {level} {entry.message}" for entry, level in alerts]
        if len(shown) > MAX_LINES_SHOWN:
            shown = [*shown[:MAX_LINES_SHOWN], f"... and {len(shown) - MAX_LINES_SHOWN} more lines"]
        counts = ", ".join(f"{levels.count(level)} {level}" for level in sorted(set(levels)))
        message.set_content(
            f"{self.args.container_name} logged {len(alerts)} alert lines ({counts}):\n\n" + "\n".join(shown) + "\n"
        )
        with smtplib.SMTP(self.args.smtp_server, self.args.smtp_port, timeout=30) as smtp:
            if self.args.is_secure:
                smtp.starttls(context=ssl.create_default_context())
            if self.password:
                smtp.login(self.args.email, self.password)
            smtp.send_message(message)


class Monitor:
    def __init__(self, args: argparse.Namespace, mailer: Mailer) -> None:
        self.args = args
        self.mailer = mailer
        self.state = State(args.state_file)
        alert_levels = {"ERROR", "CRITICAL"} | ({"WARNING"} if args.notify_warning else set())
        self.classifier = Classifier(alert_levels)
        self.alert_levels = alert_levels
        self.lines: queue.Queue = queue.Queue()
        self.follower = Follower(args.container_name, self.state.cursor, self.lines)
        self.pending: list[tuple[Entry, str]] = []
        self.window_ends = 0.0
        self.retry_at = 0.0
        self.backoff = 1.0
        self.stopping = False

    def run(self) -> int:
        self.follower.start()
        while not self.stopping:
            try:
                item = self.lines.get(timeout=self._wait())
            except queue.Empty:
                item = None
            if item is Follower.ENDED:
                self._restart_follower()
            elif item is not None:
                self._handle(parse_entry(item))
            self._send_when_due()
        self.follower.stop()
        self._drain_queue()
        self._send_when_due(force=True)
        if self.pending:
            print("monitor-docker: stopped with unsent alerts; they are sent on the next start", file=sys.stderr)
            return 1
        self.state.save(self.follower.cursor)
        return 0

    def _wait(self) -> float:
        if not self.pending:
            return 1.0
        return max(0.05, min(max(self.window_ends, self.retry_at) - time.monotonic(), 1.0))

    def _handle(self, entry: Entry) -> None:
        self.follower.cursor = entry.cursor  # where a restarted journalctl resumes: the last line read
        level = self.classifier.level(entry)
        if self.args.print:
            print(f"{entry.time:%Y-%m-%d %H:%M:%S}Z {level} {entry.message}", flush=True)
        if level in self.alert_levels:
            if not self.pending:
                self.window_ends = time.monotonic() + self.args.window
            self.pending.append((entry, level))
        elif not self.pending:
            # Not worth mailing: handled. A crash before the (throttled) write only re-reads such lines.
            self.state.save(entry.cursor, throttle=True)

    def _send_when_due(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.pending or (not force and (now < self.window_ends or now < self.retry_at)):
            return
        try:
            self.mailer.send(self.pending)
        except (smtplib.SMTPException, OSError) as error:
            print(f"monitor-docker: cannot send the alert email ({error}); retrying in {self.backoff:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
            self.retry_at = now + self.backoff
            self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)
            return
        self.pending = []
        self.backoff = 1.0
        self.state.save(self.follower.cursor)

    def _restart_follower(self) -> None:
        if self.stopping:
            return
        print("monitor-docker: journalctl stopped; starting it again", file=sys.stderr, flush=True)
        time.sleep(1)
        self.follower.start()

    def _drain_queue(self) -> None:
        while True:
            try:
                item = self.lines.get_nowait()
            except queue.Empty:
                return
            if item is not Follower.ENDED:
                self._handle(parse_entry(item))

    def stop(self, *_: object) -> None:
        self.stopping = True


def smtp_password(given: str | None) -> str | None:
    if given is not None:
        return given
    if sys.stdin.isatty():
        return getpass.getpass("SMTP password (empty: send without logging in): ") or None
    return os.environ.get("MONITOR_SMTP_PASSWORD") or None


def default_state_file(container: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "monitor-docker" / f"{container}.json"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("container_name", metavar="CONTAINER_NAME")
    parser.add_argument("smtp_server", metavar="SMTP_SERVER")
    parser.add_argument("email", metavar="EMAIL", help="sender and recipient of the alerts")
    parser.add_argument("--password", help="SMTP password (default: prompt, else MONITOR_SMTP_PASSWORD, else none)")
    parser.add_argument("--print", action="store_true", help="echo every log line to standard output")
    parser.add_argument("--smtp-port", type=int, default=25)
    parser.add_argument("--is-secure", action="store_true", help="STARTTLS before logging in and sending")
    parser.add_argument("--notify-warning", action="store_true", help="mail WARNING lines too")
    parser.add_argument("--state-file", type=Path, help="where the last handled cursor is kept")
    parser.add_argument("--window", type=float, default=5.0, help="seconds of alerts gathered into one email")
    args = parser.parse_args(argv)
    args.state_file = args.state_file or default_state_file(args.container_name)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    monitor = Monitor(args, Mailer(args, smtp_password(args.password)))
    signal.signal(signal.SIGTERM, monitor.stop)
    signal.signal(signal.SIGINT, monitor.stop)
    return monitor.run()


if __name__ == "__main__":
    sys.exit(main())
