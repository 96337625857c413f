#!/usr/bin/env python3
"""Drives a unit with paramiko, one step after another on one connection.

usage: paramiko_client.py STEP [ARG...] [-- STEP [ARG...]]...
The unit comes from the environment: UNIT_PORT, UNIT_USER (default admin),
UNIT_KEYS (private key files, ':'-separated, tried in order),
UNIT_KNOWN_HOSTS (the pinned host key; an unknown host key is refused).
Each step prints one JSON line.

steps:
  put LOCAL REMOTE        upload (paramiko's put, which stats the result)
  get REMOTE LOCAL        download (paramiko's get: every block asked at once)
  ls                      {"files": {name: size}}
  rename OLD NEW | rm NAME
  cut LOCAL REMOTE BYTES  write the first BYTES and vanish without closing
  append LOCAL REMOTE     open REMOTE for append, write LOCAL from there on
  exec COMMAND            {"status": N, "stdout": ..., "stderr": ...}
  dashboard               pty + shell: wait for the dashboard, type q
"""
import json
import os
import sys
import time

import paramiko

TIMEOUT = 60


def connect():
    client = paramiko.SSHClient()
    client.load_host_keys(os.environ["UNIT_KNOWN_HOSTS"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=int(os.environ["UNIT_PORT"]),
        username=os.environ.get("UNIT_USER", "admin"),
        key_filename=os.environ["UNIT_KEYS"].split(":"),
        look_for_keys=False,
        allow_agent=False,
        timeout=TIMEOUT,
        banner_timeout=TIMEOUT,
        auth_timeout=TIMEOUT,
    )
    return client


def out(**kw):
    print(json.dumps(kw), flush=True)


def run(client, step, args):
    sftp = None
    if step in ("put", "get", "ls", "rename", "rm", "cut", "append"):
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(TIMEOUT)
    if step == "put":
        attrs = sftp.put(args[0], args[1])
        out(step=step, size=attrs.st_size)
    elif step == "get":
        sftp.get(args[0], args[1])
        out(step=step, size=os.path.getsize(args[1]))
    elif step == "ls":
        out(step=step, files={a.filename: a.st_size for a in sftp.listdir_attr(".")})
    elif step == "rename":
        sftp.rename(args[0], args[1])
        out(step=step)
    elif step == "rm":
        sftp.remove(args[0])
        out(step=step)
    elif step == "cut":
        n = int(args[2])
        f = sftp.open(args[1], "w")
        with open(args[0], "rb") as src:
            f.write(src.read(n))
        f.flush()
        sftp.stat(args[1])  # every write acknowledged before we go
        out(step=step, size=n)
        os._exit(0)  # the cable, as far as the unit can tell
    elif step == "append":
        f = sftp.open(args[1], "a")
        offset = f.tell()
        with open(args[0], "rb") as src:
            src.seek(offset)
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                f.write(block)
        f.close()
        out(step=step, offset=offset)
    elif step == "exec":
        stdin, stdout, stderr = client.exec_command(args[0], timeout=TIMEOUT)
        stdin.close()
        o, e = stdout.read(), stderr.read()
        status = stdout.channel.recv_exit_status()
        out(step=step, status=status, stdout=o.decode(errors="replace"),
            stderr=e.decode(errors="replace"))
    elif step == "dashboard":
        chan = client.invoke_shell(term="xterm-256color", width=100, height=30)
        chan.settimeout(TIMEOUT)
        seen = b""
        deadline = time.monotonic() + TIMEOUT
        while b"testunit" not in seen:
            if time.monotonic() > deadline:
                raise SystemExit(f"no dashboard on the screen: {seen[-2000:]!r}")
            seen += chan.recv(65536)
        chan.send(b"q")
        while chan.recv(65536):  # the screen restored, then end of file
            pass
        out(step=step, status=chan.recv_exit_status(), bytes=len(seen))
    else:
        raise SystemExit(f"unknown step {step!r}")
    if sftp is not None:
        sftp.close()


def main():
    steps, cur = [], []
    for a in sys.argv[1:]:
        if a == "--":
            steps.append(cur)
            cur = []
        else:
            cur.append(a)
    steps.append(cur)
    client = connect()
    for s in steps:
        run(client, s[0], s[1:])
    client.close()


if __name__ == "__main__":
    main()
