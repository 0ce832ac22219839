"""An adversarial host: plays the sealdrop client between a real sealdropd and
a real sealdrop-trp, with switchable misbehaviours.

It speaks the protocols from docs/protocol.md on its own (no sealdrop code):
TLS 1.3 + WebSocket to the server (control JSON as text messages, inner TLS
records as binary messages), and the processor's Unix socket (u8 type | u32
length | body frames, descriptors by SCM_RIGHTS). Every relayed inner record
goes through a `tamper` hook, and every step of an order can be skipped,
repeated or replaced, so a test can try what a hostile host would.

It can also be a processor of its own: `FakeProcessor` runs an inner TLS
client with any key and certificate through ssl.MemoryBIO, to try a
substituted or uncertified key against the server.
"""
import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
from urllib.parse import urlparse

# Processor socket frame types (src/protocol/messages.h, TrpType).
OPEN_SESSION, INNER_IN, RELEASE, LIST, INFO, RUN, ABORT, OPEN = 1, 2, 3, 4, 5, 6, 7, 8
INNER_OUT, DOWNLOAD_COMPLETE, PACKAGE_END, RESULT, EXIT, ERROR = 0x81, 0x82, 0x84, 0x85, 0x86, 0xFF


class Refused(Exception):
    """The other side answered with an error or closed."""

    def __init__(self, who, code, message):
        super().__init__(f"{who}: {code}: {message}")
        self.who, self.code, self.message = who, code, message


class WebSocket:
    """A minimal RFC 6455 client over TLS: enough for /v1/session."""

    def __init__(self, url, cafile, path="/v1/session", timeout=30, source=None):
        u = urlparse(url)
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        raw = socket.create_connection((u.hostname, u.port), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        self.sock = ctx.wrap_socket(raw, server_hostname=u.hostname)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Refused("server", "closed", "no WebSocket handshake")
            head += chunk
        status, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise Refused("server", "http", status.split(b"\r\n")[0].decode())

    def _read(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(1 << 20)
            except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError) as e:
                raise Refused("server", "closed", f"the server dropped the connection ({e})")
            if not chunk:
                raise Refused("server", "closed", "the server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, payload, binary=False):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = 0x80 | (0x2 if binary else 0x1)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask_fast(payload, mask)
        try:
            self.sock.sendall(head + mask + body)
        except (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError) as e:
            raise Refused("server", "closed", f"the server dropped the connection ({e})")

    def recv(self):
        """Returns ('text', dict) or ('binary', bytes); answers pings."""
        message, kind = b"", None
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            data = self._read(n)
            op = b0 & 0x0F
            if op == 0x8:
                raise Refused("server", "closed", "WebSocket close")
            if op == 0x9:
                self._control(0xA, data)
                continue
            if op == 0xA:
                continue
            if op in (0x1, 0x2):
                kind = "text" if op == 0x1 else "binary"
            message += data
            if b0 & 0x80:
                return (kind, json.loads(message)) if kind == "text" else (kind, message)

    def _control(self, op, data):
        mask = os.urandom(4)
        self.sock.sendall(struct.pack("!BB", 0x80 | op, 0x80 | len(data)) + mask +
                          bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _mask_fast(payload, mask):
    n = len(payload)
    whole = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(whole, "big")).to_bytes(n, "big")


class Processor:
    """The processor's Unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(path)
        self.buf = b""
        self.fds = []

    def send(self, typ, body=b"", fds=()):
        if isinstance(body, str):
            body = body.encode()
        frame = struct.pack("!BI", typ, len(body)) + body
        if fds:
            socket.send_fds(self.sock, [frame[:1]], list(fds))
            self.sock.sendall(frame[1:])
        else:
            self.sock.sendall(frame)

    def recv(self):
        while True:
            if len(self.buf) >= 5:
                typ, n = struct.unpack("!BI", self.buf[:5])
                if len(self.buf) >= 5 + n:
                    body, self.buf = self.buf[5:5 + n], self.buf[5 + n:]
                    if typ == ERROR:
                        e = json.loads(body)
                        raise Refused("processor", e.get("code"), e.get("message"))
                    return typ, body
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 8)
            self.fds += fds
            if not data:
                raise Refused("processor", "closed", "the processor closed the socket")
            self.buf += data

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.sock.close()


class Host:
    """One logged-in session with the server, and orders relayed to a processor."""

    def __init__(self, url, cafile, user, password, source=None):
        self.ws = WebSocket(url, cafile, source=source)
        self.control({"type": "login", "user": user, "password": password}, expect="welcome")
        self.user = user

    def control(self, message, expect=None):
        self.ws.send(json.dumps(message))
        while True:
            kind, reply = self.ws.recv()
            if kind == "binary":  # stray inner records are not a reply
                continue
            if reply.get("type") == "error":
                raise Refused("server", reply.get("code"), reply.get("message"))
            if expect and reply.get("type") != expect:
                raise Refused("server", "unexpected", json.dumps(reply)[:200])
            return reply

    def balance(self):
        return self.control({"type": "balance"}, expect="balance")["balance"]

    def start(self, program=None, receipt=None, key=None, again=True):
        """again: a second licence of a version the user owns (the attacks buy
        the same program over and over); without it the server refuses."""
        if receipt is not None:
            return self.control({"type": "redownload", "receipt": receipt}, expect="order")
        message = {"type": "purchase", "program": program,
                   "idempotency_key": key or os.urandom(12).hex()}
        if again:
            message["again"] = True
        return self.control(message, expect="order")

    def relay(self, trp, tamper=None, record=None, timeout=30):
        """Relays until the processor reports the download complete.

        tamper(direction, index, data) -> list of byte strings to send instead
        (direction 'down' = server to processor, 'up' = processor to server).
        record, if a list, receives (direction, data) of every original record.
        Returns the DownloadComplete JSON; raises Refused when either side
        gives up, or TimeoutError when both fall silent."""
        counts = {"down": 0, "up": 0}

        def forward(direction, data):
            if record is not None:
                record.append((direction, data))
            out = [data] if tamper is None else tamper(direction, counts[direction], data)
            counts[direction] += 1
            for piece in out:
                if direction == "down":
                    trp.send(INNER_IN, piece)
                else:
                    self.ws.send(piece, binary=True)

        trp.send(OPEN_SESSION)
        while True:
            ready = []
            if self.ws.buf or self.ws.sock.pending():
                ready.append(self.ws.sock)
            if len(trp.buf) >= 5:
                ready.append(trp.sock)
            if not ready:
                ready, _, _ = select.select([self.ws.sock, trp.sock], [], [], timeout)
                if not ready:
                    raise TimeoutError("neither the server nor the processor said anything")
            if trp.sock in ready:
                typ, body = trp.recv()
                if typ == INNER_OUT:
                    forward("up", body)
                elif typ == DOWNLOAD_COMPLETE:
                    return json.loads(body)
                else:
                    raise Refused("processor", "unexpected", f"frame {typ:#x}")
            if self.ws.sock in ready:
                kind, data = self.ws.recv()
                if kind == "text":
                    if data.get("type") == "error":
                        raise Refused("server", data.get("code"), data.get("message"))
                    raise Refused("server", "unexpected", json.dumps(data)[:200])
                forward("down", data)

    def charge(self, order_id):
        return self.control({"type": "charge", "order_id": order_id}, expect="charged")

    @staticmethod
    def release(trp, release, receipt):
        """Asks for the release; returns (PackageEnd JSON, package fd)."""
        trp.send(RELEASE, json.dumps({"release": release, "receipt": receipt}))
        typ, body = trp.recv()
        if typ != PACKAGE_END:
            raise Refused("processor", "unexpected", f"frame {typ:#x}")
        fd = trp.fds.pop(0) if trp.fds else None
        return json.loads(body), fd

    def buy(self, trp_path, program, tamper=None, record=None, key=None):
        """A whole honest-or-tampered purchase. Returns (charged, package bytes)."""
        trp = Processor(trp_path)
        try:
            order = self.start(program=program, key=key)
            done = self.relay(trp, tamper, record)
            charged = self.charge(order["order_id"])
            end, fd = self.release(trp, charged["release"], charged["receipt"])
            data = os.pread(fd, end["size"], 0)
            os.close(fd)
            return charged, data
        finally:
            trp.close()

    def buy_redownload(self, trp_path, receipt):
        """A whole honest re-download. Returns the charged message."""
        trp = Processor(trp_path)
        try:
            order = self.start(receipt=receipt)
            self.relay(trp)
            charged = self.charge(order["order_id"])
            end, fd = self.release(trp, charged["release"], charged["receipt"])
            os.close(fd)
            return charged
        finally:
            trp.close()

    def close(self):
        self.ws.close()


def jws_parts(jws):
    head, payload, sig = jws.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)
    return (json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(payload))),
            base64.urlsafe_b64decode(pad(sig)))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tamper_jws_payload(jws, change):
    """Returns the JWS with its payload claims changed and the old signature."""
    head, payload, sig = jws.split(".")
    _, claims, _ = jws_parts(jws)
    change(claims)
    return head + "." + b64url(json.dumps(claims, separators=(",", ":")).encode()) + "." + sig


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()
