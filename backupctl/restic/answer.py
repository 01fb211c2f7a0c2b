"""Does a repository's HTTP server answer at all? One request, bounded; standard library only.

restic 0.14–0.17.0 wait without end for a server that accepts the connection and never
answers (a hung NAS, a stopped rest-server process behind a live proxy): no request of
their REST or S3 backend has a timeout. backupctl asks first, from where restic will run:
in its own process on the orchestrator, as `python3 -I -c SOURCE HOST PORT TLS SECONDS` on a
job's host (this file's text: it runs on the host's python3 >= 3.6 alone). Only the host,
port and TLS flag are sent: never the URL's credential or path. Any byte back (a 401, a
404, a TLS alert) is an answer: restic then says what is wrong itself.

Exit status (and `ask`'s value): 0 answered, 3 silent (nothing within SECONDS: connected
and no answer, or the connection itself hung), 4 not connected (refused, no route, no
such host: restic reports those at once on every version).
"""

import socket
import ssl
import sys

ANSWERED, SILENT, NOT_CONNECTED = 0, 3, 4


def ask(host: str, port: int, tls: bool, seconds: float) -> int:
    """ANSWERED, SILENT or NOT_CONNECTED (see the module's text)."""
    try:
        sock = socket.create_connection((host, port), timeout=seconds)
    except socket.timeout:  # python3 3.6 on a host: not TimeoutError yet
        return SILENT
    except OSError:
        return NOT_CONNECTED
    try:
        sock.settimeout(seconds)
        if tls:
            # Liveness only: nothing secret is sent on this connection, and a TLS alert
            # about the certificate is an answer too (restic checks the certificate).
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=host)
        request = f"HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode("ascii", "replace"))
        sock.recv(1)  # b"" (closed at once) is an answer as well
        return ANSWERED
    except socket.timeout:  # python3 3.6 on a host: not TimeoutError yet
        return SILENT
    except ssl.SSLError:
        return ANSWERED
    except OSError:
        return NOT_CONNECTED
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(ask(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4])))
