#!/usr/bin/env python3
"""Runs the README's quick start exactly as written and checks its outputs.

The "## Quick start" section of README.md is read as a script:
- a ```sh block holds the server command: it is run as written (through bash,
  from the repository's root, as a new user would type it) in the background,
  and the script waits until the remote it names accepts connections;
- a ```console block is a terminal transcript: each `$ COMMAND` (continued
  over the following lines while a quote is open) is run through bash, a
  trailing `&` runs it in the background, and the lines that follow a command
  up to the next `$` are the output it must print (a background command's
  output may arrive later in the block, as in a terminal);
- `<!-- quickstart: restart -->` stops the server with Ctrl-C (SIGINT, which
  must exit 0) and starts it again with the same command.

Outputs are compared after numbering UUIDs in order of appearance and masking
dates and times, since both change on every run. Any difference, a command
that fails, or a server that does not start fails the run (exit 1) with the
expected and actual transcripts. Files the quick start creates in the
repository (the database and its lock) are removed afterwards; an existing
one is moved aside first and put back.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The first start builds the release binary: allow for a cold build.
START_TIMEOUT = float(os.environ.get("QUICKSTART_START_TIMEOUT", "2400"))
COMMAND_TIMEOUT = 60
# How long a background command's expected output may take to arrive.
SETTLE_TIMEOUT = 10
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?")
RESTART = "<!-- quickstart: restart -->"


def fail(msg):
    print(f"readme-quickstart: FAILED: {msg}", flush=True)
    sys.exit(1)


def section(text, title):
    """The lines of the markdown section `## title`, up to the next `## `."""
    lines = text.splitlines()
    try:
        start = lines.index(f"## {title}") + 1
    except ValueError:
        fail(f"README.md has no '## {title}' section")
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def steps(lines):
    """('server', cmd) / ('console', lines) / ('restart', None), in order."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("```") and line[3:] in ("sh", "console"):
            kind, body = line[3:], []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if kind == "sh":
                cmds = [b for b in body if b.strip() and not b.lstrip().startswith("#")]
                if len(cmds) != 1:
                    fail(f"a quick-start sh block must hold one server command, not {cmds}")
                out.append(("server", cmds[0].strip()))
            else:
                out.append(("console", body))
        elif line == RESTART:
            out.append(("restart", None))
        i += 1
    return out


def complete(command):
    """Whether a shell command has no open quote (so it ends on this line)."""
    try:
        shlex.split(command)
        return not command.endswith("\\")
    except ValueError:
        return False


def transcript(body):
    """[(command, background, expected lines)] of a console block."""
    cmds, i = [], 0
    while i < len(body):
        if not body[i].startswith("$ "):
            fail(f"console line outside any command: {body[i]!r}")
        command = body[i][2:]
        i += 1
        while not complete(command) and i < len(body):
            command += "\n" + body[i]
            i += 1
        background = command.rstrip().endswith("&")
        if background:
            command = command.rstrip()[:-1].rstrip()
        expected = []
        while i < len(body) and not body[i].startswith("$ "):
            expected.append(body[i])
            i += 1
        cmds.append((command, background, expected))
    return cmds


def remote_of(server_cmd):
    m = re.search(r"--remote=ptcp:(\d+)(?::([0-9.]+))?", server_cmd)
    if not m:
        fail(f"the server command names no ptcp remote: {server_cmd}")
    return m.group(2) or "127.0.0.1", int(m.group(1))


class Server:
    def __init__(self, cmd):
        self.cmd = cmd
        self.log = open(os.path.join(ROOT, "target", "readme-quickstart-server.log"), "ab")
        self.proc = None

    def start(self):
        host, port = remote_of(self.cmd)
        print(f"readme-quickstart: $ {self.cmd}", flush=True)
        # Its own process group, so that Ctrl-C reaches cargo and the server
        # as it would from a terminal.
        self.proc = subprocess.Popen(["bash", "-c", self.cmd], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"the server command exited with {self.proc.returncode} before listening:\n{self.output()}")
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.kill()
        fail(f"the server did not listen on {host}:{port} within {START_TIMEOUT:.0f} s:\n{self.output()}")

    def output(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def ctrl_c(self):
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("the server did not exit within 20 s of Ctrl-C")
        if rc != 0:
            fail(f"the server exited with {rc} on Ctrl-C (the README says 0):\n{self.output()}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Background:
    """A command ending in `&`: its output is read as it arrives."""

    def __init__(self, command):
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def take_lines(self, n, timeout):
        """Waits up to `timeout` for `n` complete new lines; returns those read."""
        deadline = time.time() + timeout
        while True:
            try:
                chunk = self.proc.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                self.buf += chunk
            if self.buf.count(b"\n") >= n or time.time() > deadline:
                break
            time.sleep(0.05)
        text = self.buf.decode(errors="replace")
        lines = text.split("\n")
        taken, rest = lines[:-1], lines[-1]
        self.buf = rest.encode()
        return taken

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait()


def normalise(lines, names):
    def uuid(m):
        return names.setdefault(m.group(0), f"<uuid{len(names) + 1}>")

    return [DATETIME.sub("<datetime>", UUID.sub(uuid, l)).rstrip() for l in lines]


def run_console(body, exp_names, act_names):
    backgrounds = []
    expected_all, actual_all = [], []
    try:
        for command, background, expected in transcript(body):
            print(f"readme-quickstart: $ {command}{' &' if background else ''}", flush=True)
            actual = []
            if background:
                bg = Background(command)
                backgrounds.append(bg)
                actual += bg.take_lines(len(expected), SETTLE_TIMEOUT)
            else:
                try:
                    p = subprocess.run(["bash", "-c", command], cwd=ROOT, stdin=subprocess.DEVNULL,
                                       capture_output=True, timeout=COMMAND_TIMEOUT)
                except subprocess.TimeoutExpired:
                    fail(f"`{command}` did not finish within {COMMAND_TIMEOUT} s")
                if p.returncode != 0:
                    fail(f"`{command}` exited with {p.returncode}:\n{p.stdout.decode()}{p.stderr.decode()}")
                actual += p.stdout.decode(errors="replace").splitlines()
                # Output of the background commands caused by this one.
                for bg in backgrounds:
                    actual += bg.take_lines(max(0, len(expected) - len(actual)), SETTLE_TIMEOUT)
            expected_all += expected
            actual_all += actual
    finally:
        for bg in backgrounds:
            bg.stop()
    exp = normalise(expected_all, exp_names)
    act = normalise(actual_all, act_names)
    if exp != act:
        fail("the output differs from README.md:\n--- README.md (normalised)\n" + "\n".join(exp)
             + "\n--- actual (normalised)\n" + "\n".join(act))


def main():
    with open(os.path.join(ROOT, "README.md")) as f:
        plan = steps(section(f.read(), "Quick start"))
    if not any(k == "server" for k, _ in plan) or not any(k == "console" for k, _ in plan):
        fail("the quick start must hold a server command (```sh) and a session (```console)")
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    created = ["todo.db", ".todo.db.~lock~"]
    aside = []
    for name in created:
        path = os.path.join(ROOT, name)
        if os.path.exists(path):
            os.rename(path, path + ".quickstart-aside")
            aside.append(path)
    server = None
    exp_names, act_names = {}, {}
    try:
        for kind, arg in plan:
            if kind == "server":
                server = Server(arg)
                server.start()
            elif kind == "restart":
                if server is None:
                    fail("a restart before any server command")
                print("readme-quickstart: Ctrl-C, then the same command again", flush=True)
                server.ctrl_c()
                server.start()
            else:
                if server is None:
                    fail("a console block before the server command")
                run_console(arg, exp_names, act_names)
        server.ctrl_c()
    finally:
        if server:
            server.kill()
        for name in created:
            path = os.path.join(ROOT, name)
            if os.path.exists(path):
                os.remove(path)
        for path in aside:
            os.rename(path + ".quickstart-aside", path)
    print("readme-quickstart: 1 passed, 0 failed", flush=True)


if __name__ == "__main__":
    main()
