#!/usr/bin/env python3
"""A hostile host's relay: sits between the sealdrop client and the real
processor's Unix socket and tampers with what the host passes on.

  tamper_proxy.py LISTEN_SOCKET PROCESSOR_SOCKET MODE [FILE]

Modes (applied to host -> processor frames):
  flip            flip one byte in the first inner frame that carries package data
  drop            drop the first package-data frame
  duplicate       send the first package-data frame twice (a replay)
  reorder         swap the first two package-data frames
  record-release  pass everything, and save the release message to FILE
  replay-release  replace the release message with the one saved in FILE

Frames are u8 type | u32 big-endian length | body (docs/protocol.md);
descriptors passed by the processor (step 1011) are forwarded.
"""
import os
import socket
import struct
import sys
import threading

INNER_IN, RELEASE = 2, 3
BIG = 64 * 1024  # relayed inner messages larger than this carry package data

listen_path, target_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
state_file = sys.argv[4] if len(sys.argv) > 4 else None


def frames(sock):
    buf = b""
    while True:
        while len(buf) >= 5 and len(buf) >= 5 + struct.unpack(">I", buf[1:5])[0]:
            n = struct.unpack(">I", buf[1:5])[0]
            yield buf[0], buf[5:5 + n]
            buf = buf[5 + n:]
        chunk = sock.recv(1 << 20)
        if not chunk:
            return
        buf += chunk


def encode(t, body):
    return bytes([t]) + struct.pack(">I", len(body)) + body


def host_to_processor(host, proc):
    done, held = False, None
    try:
        for t, body in frames(host):
            out = [(t, body)]
            if t == INNER_IN and len(body) > BIG and not done:
                if mode == "flip":
                    body = bytearray(body); body[len(body) // 2] ^= 0x01
                    out, done = [(t, bytes(body))], True
                elif mode == "drop":
                    out, done = [], True
                elif mode == "duplicate":
                    out, done = [(t, body), (t, body)], True
                elif mode == "reorder":
                    if held is None:
                        held, out = body, []
                    else:
                        out, done = [(t, body), (t, held)], True
            if t == RELEASE and mode == "record-release":
                open(state_file, "wb").write(body)
            if t == RELEASE and mode == "replay-release":
                out = [(t, open(state_file, "rb").read())]
            for ft, fb in out:
                proc.sendall(encode(ft, fb))
    except OSError:
        pass
    for s in (proc, host):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def processor_to_host(proc, host):
    try:
        while True:
            data, fds, _, _ = socket.recv_fds(proc, 1 << 20, 4)
            if not data:
                break
            if fds:
                socket.send_fds(host, [data], fds)
                for fd in fds:
                    os.close(fd)
            else:
                host.sendall(data)
    except OSError:
        pass
    try:
        host.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(listen_path)
server.listen(8)
while True:
    host, _ = server.accept()
    proc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc.connect(target_path)
    threading.Thread(target=host_to_processor, args=(host, proc), daemon=True).start()
    threading.Thread(target=processor_to_host, args=(proc, host), daemon=True).start()
