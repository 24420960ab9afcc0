"""Shared plumbing of the Python baselines (the counterpart of bench/common.ts).

A baseline is a long-lived process: it starts once, sets its thread counts, prints one JSON line
describing itself (`hello`), then answers one JSON command per line on stdin ({"case": name, "iters": n})
with one JSON line ({"seconds": t}). The case functions time themselves, so process and pipe costs never
enter a measurement.

Thread counts: OPENBLAS_NUM_THREADS must be set before torch loads OpenBLAS (torch.set_num_threads
does not bound OpenBLAS's pool); the Node side sets it in our environment, and `start` sets it too
when run by hand.
"""
import argparse
import ctypes
import json
import struct
import os
import sys


def _parse_threads():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    args, _ = p.parse_known_args()
    return args.threads


def start():
    """Sets thread counts, imports torch (or reports that it cannot) and returns (torch, threads)."""
    threads = _parse_threads()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch
    except ImportError as e:
        reply({"error": f"{sys.executable} cannot import torch ({e}); pass --python or set PYTHON to an interpreter with PyTorch, e.g. /usr/bin/python3"})
        sys.exit(2)
    torch.set_num_threads(threads)
    return torch, threads


def _mapped(*names):
    """Real paths of the shared libraries mapped into this process whose file name contains one of `names`."""
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            path = fields[-1] if len(fields) >= 6 and fields[-1].startswith("/") else ""
            if path and any(n in os.path.basename(path) for n in names) and path not in libs:
                libs.append(path)
    return [os.path.realpath(p) for p in libs]


def blas_info(torch):
    """The same description as the addon's blasInfo(): kind, OpenBLAS's config string and core type, libraries."""
    libs = _mapped("blas", "mkl")  # the BLAS libtorch loaded
    info = {"kind": "unknown", "config": None, "coreType": None, "libraries": libs, "threads": None}
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            get_config = lib.openblas_get_config
        except (OSError, AttributeError):
            continue
        get_config.restype = ctypes.c_char_p
        info["kind"] = "openblas"
        info["config"] = get_config().decode()
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["coreType"] = lib.openblas_get_corename().decode()
        info["threads"] = lib.openblas_get_num_threads()
        return info
    if torch.backends.mkl.is_available():
        info["kind"] = "mkl"
    elif any("/blas/" in p or "libblas.so" in p for p in libs):
        info["kind"] = "reference"
    return info


def hello(torch):
    blas = blas_info(torch)
    threads = {"torch": torch.get_num_threads(), "interop": torch.get_num_interop_threads(), "blas": blas.pop("threads")}
    reply({
        "python": sys.executable,
        "pythonVersion": sys.version.split()[0],
        "torch": torch.__version__,
        "libtorch": next(iter(_mapped("libtorch_cpu")), None),
        "threads": threads,
        "blas": blas,
    })


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(cases, whole_command=False, quiet_stdout=False, finish=None):
    """Answers commands until stdin closes. `cases` maps a name to fn(iters) -> seconds (or a dict, for
    answers that are not timings, such as a parity check's loss); with `whole_command` each case gets the
    whole command (its settings and data) instead of an iteration count. `quiet_stdout` sends what a case
    prints to stderr (stdout carries answers only); `finish(answer)` may add to a dict answer."""
    import contextlib

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            fn = cases.get(cmd.get("case"))
            if fn is None:
                reply({"error": f"unknown case {cmd.get('case')!r}; known: {', '.join(cases)}"})
                continue
            with contextlib.redirect_stdout(sys.stderr) if quiet_stdout else contextlib.nullcontext():
                r = fn(cmd) if whole_command else fn(int(cmd.get("iters", 1)))
            r = r if isinstance(r, dict) else {"seconds": r}
            reply(finish(r) if finish else r)
        except Exception as e:  # one bad command must not lose the process: report it and go on
            reply({"error": f"{type(e).__name__}: {e}"})


def load_safetensors(path, torch=None):
    """float32 tensors of a safetensors file by name (this machine's Python has no safetensors package)."""
    if torch is None:
        import torch
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", meta["dtype"]
        a, b = meta["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[base + a : base + b]), dtype=torch.float32).reshape(meta["shape"])
    return out
