"""A long-lived native ezkl 21 prover, driven by the ezkl-native plugin (pool.ts).

Usage: python server.py SOCKET WORKDIR

It connects to the Unix socket SOCKET (the plugin listens on it), says hello, then serves requests
one at a time: one JSON object per line in each direction, replies matched to requests by `id`.
WORKDIR is a private directory the plugin created for this process (and removes after it); model
copies and job files live there.

Requests:
  {"id": n, "op": "load", "key": K, "files": {NAME: {"path": ABS, "sha256": HEX}, ...}}
      NAME in compiled, vk, settings, srs, and pk once the plugin has the proving key. Reads each
      file, checks it against the sha256 it was given (and nothing else), and keeps a private copy
      under WORKDIR, so that the files proven with are exactly the ones checked even if the
      originals change later.
  {"id": n, "op": "evict", "key": K}
  {"id": n, "op": "witness" | "prove" | "verify" | "setup", "key": K, "payload": BASE64}
      payload: the input JSON (witness), the witness JSON (prove), the proof JSON (verify), or for
      setup {"vk": ABS, "pk": ABS}: where ezkl.setup writes the keys it derives from the compiled
      circuit and the SRS.
Replies:
  {"id": n, "ok": true, "value": BASE64 | true | false | null, "ms": float, "peakRssBytes"?: int}
      peakRssBytes (prove only, where Linux lets the process reset it): the process's peak resident
      memory during the job
  {"id": n, "ok": false, "error": {"kind": KIND, "message": str}, "ms": float}
      KIND: "engine" (ezkl raised: bad input, invalid proof), "panic" (ezkl panicked: the plugin
      replaces this process), "artifact" (a file is missing or differs from its sha256),
      "protocol" (the request itself is malformed; id is null when it could not be read).

Bad input never ends the process: every failure is a reply. The process exits when the socket
closes. ezkl 21 may abort during interpreter teardown, so it leaves with os._exit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import traceback

ARTIFACTS = ("compiled", "vk", "settings", "srs")
OPTIONAL_ARTIFACTS = ("pk",)
KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class Failure(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def is_panic(e: BaseException) -> bool:
    """A Rust panic surfaced by pyo3 (PanicException) or pyo3-async-runtimes (RustPanic)."""
    return any(t.__name__ in ("PanicException", "RustPanic") for t in type(e).__mro__)


def reset_peak_rss() -> bool:
    """Resets this process's peak resident memory (Linux: 5 to /proc/self/clear_refs), so that the
    peak read after a job is the job's own. False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int | None:
    """This process's peak resident memory since the last reset (VmHWM), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def first_lines(text: str, n: int = 4) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("  ")]
    return " | ".join(lines[:n])[:2000]


class Server:
    def __init__(self, ezkl, workdir: str):
        self.ezkl = ezkl
        self.workdir = workdir
        self.models: dict[str, dict[str, str]] = {}
        self.loop = asyncio.new_event_loop()
        self.jobs = os.path.join(workdir, "jobs")
        os.makedirs(self.jobs, exist_ok=True)

    # ── requests ──────────────────────────────────────────────────────────

    def handle(self, line: bytes) -> dict:
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError) as e:
            return {"id": None, "ok": False, "error": {"kind": "protocol", "message": f"not JSON: {e}"}, "ms": 0}
        if not isinstance(req, dict) or not isinstance(req.get("id"), int) or isinstance(req.get("id"), bool):
            return {"id": None, "ok": False, "error": {"kind": "protocol", "message": "a request is an object with an integer id"}, "ms": 0}
        rid = req["id"]
        t0 = time.perf_counter()
        measured = req.get("op") == "prove" and reset_peak_rss()
        try:
            value = self.dispatch(req)
            reply = {"id": rid, "ok": True, "value": value, "ms": (time.perf_counter() - t0) * 1000}
            if measured:
                peak = peak_rss()
                if peak:
                    reply["peakRssBytes"] = peak
            return reply
        except Failure as e:
            kind, message = e.kind, str(e)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - every failure becomes a reply
            kind = "panic" if is_panic(e) else "engine"
            message = first_lines(str(e)) or type(e).__name__
        return {"id": rid, "ok": False, "error": {"kind": kind, "message": message}, "ms": (time.perf_counter() - t0) * 1000}

    def dispatch(self, req: dict):
        op = req.get("op")
        if op == "load":
            return self.load(req)
        if op == "evict":
            self.evict(self.key(req))
            return None
        if op in ("witness", "prove", "verify", "setup"):
            paths = self.models.get(self.key(req))
            if paths is None:
                raise Failure("protocol", f"model {req.get('key')} is not loaded")
            payload = req.get("payload")
            if not isinstance(payload, str):
                raise Failure("protocol", '"payload" must be a base64 string')
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as e:
                raise Failure("protocol", f'"payload" is not base64: {e}') from None
            return getattr(self, op)(paths, data)
        raise Failure("protocol", f"unknown op {op!r}")

    def key(self, req: dict) -> str:
        key = req.get("key")
        if not isinstance(key, str) or not KEY.match(key):
            raise Failure("protocol", '"key" must be 1-128 letters, digits, "_" or "-"')
        return key

    # ── models ────────────────────────────────────────────────────────────

    def load(self, req: dict):
        key = self.key(req)
        files = req.get("files")
        if not isinstance(files, dict) or not set(ARTIFACTS) <= set(files) <= set(ARTIFACTS + OPTIONAL_ARTIFACTS):
            raise Failure("protocol", f'"files" must name {", ".join(ARTIFACTS)} (and optionally {", ".join(OPTIONAL_ARTIFACTS)})')
        target = os.path.join(self.workdir, "models", key)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        paths = {}
        for name in sorted(files):
            spec = files[name]
            if not isinstance(spec, dict) or not isinstance(spec.get("path"), str) or not isinstance(spec.get("sha256"), str):
                raise Failure("protocol", f'"files.{name}" must be {{"path": str, "sha256": str}}')
            path, want = spec["path"], spec["sha256"].lower()
            if not os.path.isabs(path):
                raise Failure("protocol", f'"files.{name}.path" must be absolute')
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise Failure("artifact", f"cannot read {name} at {path}: {e.strerror or e}") from None
            got = hashlib.sha256(data).hexdigest()
            if got != want:
                raise Failure("artifact", f"{name} at {path} has sha256 {got}, not the {want} the prover was given")
            paths[name] = os.path.join(target, name)
            with open(paths[name], "wb") as f:
                f.write(data)
        self.models[key] = paths
        return None

    def evict(self, key: str) -> None:
        self.models.pop(key, None)
        shutil.rmtree(os.path.join(self.workdir, "models", key), ignore_errors=True)

    # ── engine calls ──────────────────────────────────────────────────────

    def job_file(self, name: str, data: bytes | None = None) -> str:
        path = os.path.join(self.jobs, name)
        if os.path.exists(path):
            os.remove(path)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        return path

    def read_output(self, path: str, op: str) -> str:
        try:
            with open(path, "rb") as f:
                return base64.b64encode(f.read()).decode("ascii")
        except OSError:
            raise Failure("engine", f"ezkl {op} wrote no output") from None

    def witness(self, m: dict, data: bytes):
        inp, out = self.job_file("input.json", data), self.job_file("witness.json")

        async def run():
            # ezkl 21 returns an awaitable that must be created inside a running event loop.
            return await self.ezkl.gen_witness(inp, m["compiled"], out)

        self.loop.run_until_complete(run())
        return self.read_output(out, "witness")

    def prove(self, m: dict, data: bytes):
        if "pk" not in m:
            raise Failure("protocol", "no proving key loaded for this model")
        wit, out = self.job_file("witness.json", data), self.job_file("proof.json")
        self.ezkl.prove(wit, m["compiled"], m["pk"], out, "single", m["srs"])
        return self.read_output(out, "prove")

    def verify(self, m: dict, data: bytes):
        proof = self.job_file("verify.json", data)
        return self.ezkl.verify(proof, m["settings"], m["vk"], m["srs"]) is True

    def setup(self, m: dict, data: bytes):
        try:
            target = json.loads(data)
            vk, pk = target["vk"], target["pk"]
        except (ValueError, KeyError, TypeError):
            raise Failure("protocol", 'setup\'s payload must be {"vk": path, "pk": path}') from None
        if not (isinstance(vk, str) and isinstance(pk, str) and os.path.isabs(vk) and os.path.isabs(pk)):
            raise Failure("protocol", "setup's paths must be absolute")
        if self.ezkl.setup(m["compiled"], vk, pk, m["srs"]) is not True:
            raise Failure("engine", "ezkl setup failed")
        return None


def send(sock: socket.socket, msg: dict) -> None:
    sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")


def main() -> None:
    if len(sys.argv) != 3:
        print("usage: server.py SOCKET WORKDIR", file=sys.stderr, flush=True)
        os._exit(2)
    sock_path, workdir = sys.argv[1], sys.argv[2]
    try:
        import ezkl
    except BaseException as e:  # noqa: BLE001
        print(f"cannot import ezkl ({type(e).__name__}: {e}) with {sys.executable}", file=sys.stderr, flush=True)
        os._exit(3)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    server = Server(ezkl, workdir)
    send(
        sock,
        {
            "type": "hello",
            "ezkl": getattr(ezkl, "__version__", "unknown"),
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "threads": os.environ.get("RAYON_NUM_THREADS"),
        },
    )
    reader = sock.makefile("rb")
    try:
        for line in reader:
            if not line.strip():
                continue
            send(sock, server.handle(line))
    except (BrokenPipeError, ConnectionResetError):
        pass
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    # The plugin closed the connection (or died): leave no files behind.
    shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # ezkl 21 may abort during interpreter teardown


if __name__ == "__main__":
    main()
