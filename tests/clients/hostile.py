#!/usr/bin/env python3
"""Clients for tests/tests/e2e/hostile.rs: paramiko, and raw TCP clients
that misbehave on purpose. Each subcommand prints what it saw and exits 0
when the server behaved; every wait has a generous give-up point (a hang
is a failure, not a slow pass)."""

import hashlib
import socket
import struct
import sys
import threading
import time

GIVE_UP = 240.0


def connect(port, key, **kw):
    import paramiko

    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    c.connect(
        "127.0.0.1",
        port=port,
        username="admin",
        key_filename=key,
        look_for_keys=False,
        allow_agent=False,
        timeout=60,
        banner_timeout=60,
        auth_timeout=60,
        **kw,
    )
    return c


def in_thread(fn, what):
    """Runs fn in a thread; fails if it has not returned by GIVE_UP."""
    out = {}

    def run():
        try:
            out["ok"] = fn()
        except Exception as e:  # noqa: BLE001 - reported to the test
            out["err"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(GIVE_UP)
    if t.is_alive():
        print(f"HUNG: {what}", flush=True)
        sys.exit(1)
    return out


def get(port, key, remote, local, stall=False):
    """paramiko SFTPClient.get(): it asks for every 32 KiB block at once."""
    c = connect(port, key)
    sftp = c.open_sftp()
    if stall:
        started = threading.Event()

        def progress(done, total):
            # Far enough for every read to be outstanding (or the transfer
            # stuck: then "started" comes at the give-up point).
            if done >= 4 << 20:
                started.set()

        threading.Thread(
            target=lambda: sftp.get(remote, local, callback=progress), daemon=True
        ).start()
        started.wait(GIVE_UP)
        print("started", flush=True)
        time.sleep(10_000)  # the test stops (SIGSTOP) and kills this process
        return
    r = in_thread(lambda: sftp.get(remote, local), f"get {remote}")
    if "err" in r:
        print(f"get failed: {r['err']!r}")
        sys.exit(1)
    with open(local, "rb") as f:
        print("sha256", hashlib.sha256(f.read()).hexdigest())
    c.close()


def execs(port, key, n):
    """n exec commands over one connection, one after another."""
    c = connect(port, key)
    for i in range(n):
        _, out, err = c.exec_command("status")
        text = out.read()
        code = out.channel.recv_exit_status()
        if code != 0 or b"testunit" not in text:
            print(f"exec {i + 1}: exit {code}: {text!r} {err.read()!r}")
            sys.exit(1)
    print(f"{n} execs ok")
    c.close()


def resize(port, key, cols, rows):
    """A pty of cols x rows, then a window-change to the same."""
    c = connect(port, key)
    ch = c.invoke_shell(term="xterm", width=80, height=24)
    ch.recv(1)  # the dashboard drew something
    ch.resize_pty(width=cols, height=rows, width_pixels=cols, height_pixels=rows)
    ch2 = c.get_transport().open_session()
    ch2.get_pty(term="xterm", width=cols, height=rows, width_pixels=cols, height_pixels=rows)
    ch2.invoke_shell()
    # Still served: the first dashboard keeps drawing or at least answers.
    ch.settimeout(GIVE_UP)
    ch.send(b"q")
    data = b""
    while not ch.exit_status_ready():
        d = ch.recv(65536)
        if not d:
            break
        data += d
    print("resized; dashboard left with", ch.recv_exit_status())
    c.close()


def refused_requests(port, key):
    """x11-req, tcpip-forward and direct-tcpip: each answered promptly."""
    import paramiko

    c = connect(port, key)
    t = c.get_transport()
    ch = t.open_session()

    def x11():
        try:
            ch.request_x11(single_connection=True)
        except paramiko.SSHException as e:
            return f"refused ({e})"
        return "accepted"

    r = in_thread(x11, "request_x11")
    print("x11-req:", r.get("ok") or r.get("err"))

    def fwd():
        try:
            t.request_port_forward("127.0.0.1", 0)
        except paramiko.SSHException as e:
            return f"refused ({e})"
        return "accepted"

    r = in_thread(fwd, "request_port_forward")
    print("tcpip-forward:", r.get("ok") or r.get("err"))

    def direct():
        try:
            t.open_channel("direct-tcpip", ("127.0.0.1", port), ("127.0.0.1", 1))
        except paramiko.ChannelException as e:
            return f"refused ({e})"
        return "accepted"

    r = in_thread(direct, "direct-tcpip")
    print("direct-tcpip:", r.get("ok") or r.get("err"))
    # The connection still works (paramiko closes a channel whose request
    # failed: use a new one).
    ch = t.open_session()
    ch.exec_command("status")
    print("exit", ch.recv_exit_status())
    c.close()


def raw(port, source="127.0.0.1"):
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def plain_packet(payload):
    """An unencrypted SSH packet (before the first key exchange)."""
    pad = 8 - (len(payload) + 5) % 8
    if pad < 4:
        pad += 8
    return struct.pack(">IB", len(payload) + 1 + pad, pad) + payload + b"\0" * pad


def ignore_packet():
    return plain_packet(bytes([2]) + struct.pack(">I", 4) + b"ping")


def wait_closed(s, what, keep_sending=None):
    """Waits for the server to close `s` (EOF or reset); fails on give-up."""
    s.settimeout(0.5)
    start = time.time()
    while time.time() - start < GIVE_UP:
        try:
            if keep_sending is not None:
                keep_sending(s)
            d = s.recv(65536)
            if not d:
                return time.time() - start
        except socket.timeout:
            continue
        except OSError:
            return time.time() - start
    print(f"STILL OPEN: {what}", flush=True)
    sys.exit(1)


def grace(port):
    """Clients that never finish logging in, each in another state."""
    import paramiko

    socks = {}
    socks["silent (no banner)"] = raw(port)
    s = raw(port)
    s.sendall(b"SSH-2.0-stalled\r\n")
    socks["banner, no KEXINIT"] = s
    s = raw(port)
    s.sendall(b"SSH-2.0-ignorer\r\n")
    socks["SSH_MSG_IGNORE every 0.5 s"] = s
    last = [0.0]

    def ping(s):
        if time.time() - last[0] > 0.5:
            last[0] = time.time()
            s.sendall(ignore_packet())

    # paramiko at the pairing-code prompt, never answering. Its handler runs
    # on the transport's thread, which so stops reading: watch the socket.
    prompt_sock = raw(port)
    t = paramiko.Transport(prompt_sock)
    t.start_client(timeout=60)
    prompted = threading.Event()

    def handler(title, instructions, prompts):
        prompted.set()
        time.sleep(10_000)

    threading.Thread(target=lambda: t.auth_interactive("admin", handler), daemon=True).start()
    if not prompted.wait(60):
        print("no pairing prompt")
        sys.exit(1)
    for what, s in socks.items():
        wait_closed(s, what, ping if "IGNORE" in what else None)
        print("closed:", what, flush=True)
    prompt_sock.settimeout(GIVE_UP)
    try:
        data = prompt_sock.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        print("STILL OPEN: pairing prompt")
        sys.exit(1)
    except OSError:
        data = b""
    if data:
        print("unexpected data after the prompt")
        sys.exit(1)
    print("closed: pairing prompt", flush=True)


def flood(port, sources, each):
    """Keeps `each` stalled connections open from every source address,
    opening a new one whenever the server closes one. Runs until killed."""
    held = []
    said = False
    while True:
        by = {src: 0 for src in sources}
        alive = []
        for src, s in held:
            try:
                s.setblocking(False)
                d = s.recv(1024)
                if d == b"":
                    s.close()
                    continue
                alive.append((src, s))  # a banner: still open
            except BlockingIOError:
                alive.append((src, s))
            except OSError:
                s.close()
                continue
            by[src] += 1
        held = alive
        for src in sources:
            for _ in range(each - by[src]):
                try:
                    held.append((src, raw(port, src)))
                except OSError:
                    pass
        if not said and len(held) >= len(sources) * each // 2:
            print("flooding", flush=True)
            said = True
        time.sleep(0.05)


def refused(port, n):
    """n connections, each closed at once by the server (refused)."""
    closed = 0
    for _ in range(n):
        s = raw(port)
        s.settimeout(GIVE_UP)
        try:
            if s.recv(1024) == b"":
                closed += 1
        except OSError:
            closed += 1
        s.close()
    print("refused", closed)


def hold(port):
    """One stalled connection, held until killed."""
    s = raw(port)
    s.recv(1024)
    print("holding", flush=True)
    time.sleep(10_000)


def huge_packet(port):
    """Banner, then a packet whose length field says 4 GiB."""
    s = raw(port)
    s.sendall(b"SSH-2.0-huge\r\n")
    s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"\x04" + b"\0" * 11)
    took = wait_closed(s, "packet length 0xFFFFFFF0")
    print(f"closed after {took:.1f}s")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "get":
        get(int(args[0]), args[1], args[2], args[3], stall=len(args) > 4)
    elif cmd == "execs":
        execs(int(args[0]), args[1], int(args[2]))
    elif cmd == "resize":
        resize(int(args[0]), args[1], int(args[2]), int(args[3]))
    elif cmd == "refused-requests":
        refused_requests(int(args[0]), args[1])
    elif cmd == "grace":
        grace(int(args[0]))
    elif cmd == "flood":
        flood(int(args[0]), args[1].split(","), int(args[2]))
    elif cmd == "refused":
        refused(int(args[0]), int(args[1]))
    elif cmd == "hold":
        hold(int(args[0]))
    elif cmd == "huge-packet":
        huge_packet(int(args[0]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
