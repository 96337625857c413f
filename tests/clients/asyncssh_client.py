#!/usr/bin/env python3
"""Drives a unit with asyncssh, one step after another on one connection.

usage: asyncssh_client.py STEP [ARG...] [-- STEP [ARG...]]...
The same steps, environment and JSON lines as paramiko_client.py (UNIT_PORT,
UNIT_USER, UNIT_KEYS, UNIT_KNOWN_HOSTS), with asyncssh's own calls: put/get (which
pipeline many requests), readdir, rename, remove, open with append, run.
"""
import asyncio
import json
import os
import sys

import asyncssh

TIMEOUT = 60


def out(**kw):
    print(json.dumps(kw), flush=True)


async def run(conn, step, args):
    if step == "exec":
        r = await conn.run(args[0], check=False, timeout=TIMEOUT)
        out(step=step, status=r.exit_status, stdout=r.stdout, stderr=r.stderr)
        return
    if step == "dashboard":
        proc = await conn.create_process(term_type="xterm-256color", term_size=(100, 30))
        seen = ""
        while "testunit" not in seen:
            chunk = await asyncio.wait_for(proc.stdout.read(65536), TIMEOUT)
            if not chunk:
                raise SystemExit(f"no dashboard on the screen: {seen[-2000:]!r}")
            seen += chunk
        proc.stdin.write("q")
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        out(step=step, status=proc.exit_status, bytes=len(seen))
        return
    async with conn.start_sftp_client() as sftp:
        if step == "put":
            await sftp.put(args[0], args[1])
            out(step=step, size=(await sftp.stat(args[1])).size)
        elif step == "get":
            await sftp.get(args[0], args[1])
            out(step=step, size=os.path.getsize(args[1]))
        elif step == "ls":
            names = await sftp.readdir(".")
            out(step=step, files={n.filename: n.attrs.size for n in names})
        elif step == "rename":
            await sftp.rename(args[0], args[1])
            out(step=step)
        elif step == "rm":
            await sftp.remove(args[0])
            out(step=step)
        elif step == "cut":
            n = int(args[2])
            f = await sftp.open(args[1], "wb")
            with open(args[0], "rb") as src:
                await f.write(src.read(n), 0)
            out(step=step, size=n)
            os._exit(0)  # vanish without closing: a cut connection
        elif step == "append":
            offset = (await sftp.stat(args[1])).size
            async with sftp.open(args[1], "ab") as f:
                with open(args[0], "rb") as src:
                    src.seek(offset)
                    pos = offset
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        await f.write(block, pos)
                        pos += len(block)
            out(step=step, offset=offset)
        else:
            raise SystemExit(f"unknown step {step!r}")


async def main():
    steps, cur = [], []
    for a in sys.argv[1:]:
        if a == "--":
            steps.append(cur)
            cur = []
        else:
            cur.append(a)
    steps.append(cur)
    async with asyncssh.connect(
        "127.0.0.1",
        port=int(os.environ["UNIT_PORT"]),
        username=os.environ.get("UNIT_USER", "admin"),
        client_keys=os.environ["UNIT_KEYS"].split(":"),
        known_hosts=os.environ["UNIT_KNOWN_HOSTS"],
        agent_path=None,
        login_timeout=TIMEOUT,
    ) as conn:
        for s in steps:
            await run(conn, s[0], s[1:])


if __name__ == "__main__":
    asyncio.run(main())
