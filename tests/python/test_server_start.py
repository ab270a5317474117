"""Start the real llama-stack 0.7.3 server on an operator-generated config, against a fake backend (D1).

test_generated_config_starts_server:
  1. starts fake_openai_server.py on a free 127.0.0.1 port;
  2. substitutes that port into server-cr.yaml and runs `$LLSD_OPERATOR_BIN generate -o json -f <cr>`;
  3. writes configYaml to a temp file, sets every env[].name to a test value;
  4. runs `python -m llama_stack.cli.llama stack run <cfg> --port <free port>` with SQLITE_STORE_DIR and
     LLAMA_STACK_CONFIG_DIR in temp dirs, waits for GET /v1/health (90 s; the server log is shown on
     failure);
  5. asserts GET /v1/providers lists exactly the CR's providers (api, provider_id, provider_type) and
     GET /v1/models contains every CR model as <provider_id>/<model name>.
  Fails (never skips) when LLSD_OPERATOR_BIN is unset.

test_expected_config_starts_server: the same server check on the hand-written config we expect the
operator to generate for server-cr.yaml (fixtures/server-expected/config.yaml), independent of the CLI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SERVER_CR = HERE / "server-cr.yaml"
EXPECTED_CONFIG = HERE / "fixtures" / "server-expected" / "config.yaml"
CATALOG = REPO / "configs" / "catalogs" / "llama-stack-0.7.3.json"
HEALTH_TIMEOUT_S = 90
TEST_SECRET = "test-secret-value"

# D8: the CR's camelCase API names -> config.yaml snake_case
API_SNAKE = {"vectorIo": "vector_io", "toolRuntime": "tool_runtime", "fileProcessors": "file_processors",
             "postTraining": "post_training"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback only)
        return r.status, json.loads(r.read() or b"null")


def stop(proc: subprocess.Popen | None, name: str) -> None:
    """Stop a child we started, by its PID (process group created with start_new_session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print(f"{name} (pid {proc.pid}) ignored SIGTERM for 15 s; killing", file=sys.stderr)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def fake_backend():
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="fake-backend-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_openai_server.py"), str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if http_get(f"http://127.0.0.1:{port}/health", timeout=1)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"fake backend did not come up on port {port}:\n{Path(log.name).read_text()}")
            time.sleep(0.1)
        yield port
    finally:
        stop(proc, "fake backend")
        log.close()
        os.unlink(log.name)


def resolve_provider_type(api: str, provider: str) -> str:
    """D1: `x::y` as is; else remote::<name> when the catalog has it, else inline::<name>."""
    if "::" in provider:
        return provider
    known = json.loads(CATALOG.read_text())["providers"].get(api, {})
    return f"remote::{provider}" if f"remote::{provider}" in known else f"inline::{provider}"


def expected_from_cr(cr: dict) -> tuple[set[tuple[str, str, str]], set[str]]:
    spec = cr["spec"]
    providers = set()
    for api, entries in (spec.get("providers") or {}).items():
        snake = API_SNAKE.get(api, api)
        for p in entries:
            providers.add((snake, p["id"], resolve_provider_type(snake, p["provider"])))
    inference_ids = sorted(pid for api, pid, _ in providers if api == "inference")
    models = set()
    for m in (spec.get("resources") or {}).get("models") or []:
        m = {"name": m} if isinstance(m, str) else m
        pid = m.get("provider") or (inference_ids[0] if len(inference_ids) == 1 else None)
        assert pid, f"cannot tell which provider serves model {m}"
        models.add(f"{pid}/{m['name']}")
    return providers, models


def run_server_and_check(config_yaml: str, env_names: list[str], backend_port: int,
                         want_providers: set, want_models: set) -> None:
    with tempfile.TemporaryDirectory(prefix="llsd-server-") as td:
        td = Path(td)
        cfg = td / "config.yaml"
        cfg.write_text(config_yaml)
        (td / "store").mkdir()
        (td / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLSD_", "VLLM_", "LLAMA_STACK"))}
        env.update({name: TEST_SECRET for name in env_names})
        env.update({
            "VLLM_URL": f"http://127.0.0.1:{backend_port}/v1",
            "SQLITE_STORE_DIR": str(td / "store"),
            "LLAMA_STACK_CONFIG_DIR": str(td / "home"),
        })
        port = free_port()
        cmd = [sys.executable, "-m", "llama_stack.cli.llama", "stack", "run", str(cfg), "--port", str(port)]
        log_path = td / "server.log"
        t0 = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, env=env, cwd=td, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        base = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = t0 + HEALTH_TIMEOUT_S
            while True:
                try:
                    status, body = http_get(f"{base}/health", timeout=2)
                    if status == 200:
                        break
                except (urllib.error.URLError, OSError, ValueError):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not healthy after {HEALTH_TIMEOUT_S}s"
                    pytest.fail(f"llama-stack server {why}\ncommand: {shlex.join(cmd)}\n"
                                f"config:\n{config_yaml}\nserver log:\n{log_path.read_text()[-20000:]}")
                time.sleep(0.25)
            print(f"server healthy {time.monotonic() - t0:.1f}s after launch", file=sys.stderr)

            _, providers = http_get(f"{base}/providers")
            got = {(p["api"], p["provider_id"], p["provider_type"]) for p in providers["data"]}
            assert got == want_providers, f"/v1/providers: got {sorted(got)}, want {sorted(want_providers)}"

            _, models = http_get(f"{base}/models")
            ids = {m["id"] for m in models["data"]}
            assert want_models <= ids, f"/v1/models: missing {sorted(want_models - ids)}; got {sorted(ids)}"
        finally:
            stop(proc, "llama-stack server")


def test_generated_config_starts_server():
    binary = os.environ.get("LLSD_OPERATOR_BIN")
    if not binary:
        pytest.fail("LLSD_OPERATOR_BIN is not set: point it at the operator CLI binary "
                    "(e.g. LLSD_OPERATOR_BIN=target/debug/<operator-binary>) so this test can run "
                    "`$LLSD_OPERATOR_BIN generate -o json -f tests/python/server-cr.yaml`")
    assert Path(binary).exists() or subprocess.run(["which", binary], capture_output=True).returncode == 0, \
        f"LLSD_OPERATOR_BIN={binary} does not exist"
    with fake_backend() as backend_port, tempfile.TemporaryDirectory(prefix="llsd-cr-") as td:
        cr_text = SERVER_CR.read_text().replace("127.0.0.1:PORT", f"127.0.0.1:{backend_port}")
        cr_path = Path(td) / "server-cr.yaml"
        cr_path.write_text(cr_text)
        cmd = [binary, "generate", "-o", "json", "-f", str(cr_path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{shlex.join(cmd)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        out = json.loads(r.stdout)
        for key in ("configYaml", "env", "contentHash", "providerCount", "resourceCount", "configVersion", "warnings"):
            assert key in out, f"generate output lacks '{key}': {sorted(out)}"
        env_names = [e["name"] for e in out["env"]]
        assert {(e["secretName"], e["secretKey"]) for e in out["env"]} >= {("vllm-auth", "token")}, out["env"]
        for name in env_names:
            assert re.fullmatch(r"[A-Z0-9_]+", name), f"env name {name!r} cannot be used in ${{env.X}}"
        want_providers, want_models = expected_from_cr(yaml.safe_load(cr_text))
        run_server_and_check(out["configYaml"], env_names, backend_port, want_providers, want_models)


def test_expected_config_starts_server():
    """The hand-written config we expect for server-cr.yaml (backend port 18000 there) starts and answers."""
    with fake_backend() as backend_port:
        cr_text = SERVER_CR.read_text().replace("127.0.0.1:PORT", f"127.0.0.1:{backend_port}")
        config_yaml = EXPECTED_CONFIG.read_text().replace("127.0.0.1:18000", f"127.0.0.1:{backend_port}")
        gen = json.loads((EXPECTED_CONFIG.parent / "generated.json").read_text())
        want_providers, want_models = expected_from_cr(yaml.safe_load(cr_text))
        run_server_and_check(config_yaml, [e["name"] for e in gen["env"]], backend_port, want_providers, want_models)
