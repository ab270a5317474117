#!/usr/bin/env python3
"""A small fake OpenAI-compatible (vLLM look-alike) backend for server-start tests.

    python fake_openai_server.py PORT

Listens on 127.0.0.1:PORT only. Answers:
  GET  /v1/models             -> two models, fake/model-a and fake/model-b
  GET  /health, /v1/health    -> 200 {}
  POST /v1/chat/completions   -> a fixed non-streaming completion
Everything else is 404. Each request is logged to stderr (with the Authorization header's scheme
only, never the credential).
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ("fake/model-a", "fake/model-b")


class Handler(BaseHTTPRequestHandler):
    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _log(self, extra: str = "") -> None:
        auth = self.headers.get("Authorization")
        scheme = auth.split(" ", 1)[0] if auth else None
        sys.stderr.write(f"fake: {self.command} {self.path} auth={scheme} {extra}\n")
        sys.stderr.flush()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._log()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake", "max_model_len": 8192}
                for m in MODELS]})
        elif path in ("/health", "/v1/health"):
            self._json(200, {})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            req = {}
        self._log(f"model={req.get('model')} stream={req.get('stream')}")
        if self.path.rstrip("/") == "/v1/chat/completions" and not req.get("stream"):
            self._json(200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": req.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "hello from the fake backend"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
            })
        else:
            self._json(404, {"error": "not supported by the fake backend"})

    def log_message(self, *args) -> None:  # silence the default access log
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18000
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    sys.stderr.write(f"fake: listening on 127.0.0.1:{port}\n")
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
