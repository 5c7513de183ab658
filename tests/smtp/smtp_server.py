"""Test-only SMTP server for wpbackup's tests: aiosmtpd (a real SMTP implementation) with
AUTH PLAIN/LOGIN required for one user, storing each accepted message as OUT/NNNN.eml and its
envelope (sender, recipients, the authenticated user) as OUT/NNNN.json.

Settings come from the environment (the password never appears on a command line):
  SMTPSIM_PORT, SMTPSIM_DIR, SMTPSIM_USER, SMTPSIM_PASSWORD
Prints "ready" once it accepts connections; stops on SIGTERM.
"""

import json
import os
import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT = int(os.environ["SMTPSIM_PORT"])
OUT = os.environ["SMTPSIM_DIR"]
USER = os.environ["SMTPSIM_USER"].encode()
PASSWORD = os.environ["SMTPSIM_PASSWORD"].encode()


def authenticator(server, session, envelope, mechanism, auth_data):
    if (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER
        and auth_data.password == PASSWORD
    ):
        return AuthResult(success=True, auth_data=auth_data.login.decode())
    return AuthResult(success=False, handled=False)


class Store:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            base = os.path.join(OUT, f"{self.count:04d}")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        # The .eml appears last and whole (rename), so a reader never sees half a message.
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 Message accepted for delivery"


controller = Controller(
    Store(),
    hostname="127.0.0.1",
    port=PORT,
    authenticator=authenticator,
    auth_required=True,
    auth_require_tls=False,
)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()
