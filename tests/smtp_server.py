"""A real SMTP server for the notification tests: aiosmtpd writing every message to a Maildir.

Run as its own process (`python -m tests.smtp_server --port P --maildir DIR [--user U
--password-file F] [--cert C --key K]`); prints READY when it accepts connections.
With --user, only that login is accepted (anything else: 535); with --cert/--key it offers
STARTTLS (and then requires it before a login).
"""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--user")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    args = parser.parse_args()
    password = args.password_file.read_text().splitlines()[0] if args.password_file else ""

    def authenticate(_server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str,
                     data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == args.user and \
            data.password.decode() == password
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    options: dict[str, Any] = {}
    if args.user:
        options.update(authenticator=authenticate, auth_require_tls=bool(args.cert))
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        options["tls_context"] = context
    controller = Controller(Mailbox(args.maildir), hostname="127.0.0.1", port=args.port,
                            **options)
    controller.start()
    print("READY", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    controller.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
