#!/usr/bin/env python3
"""STAND-IN for a vLLM server in the real-node tests: NOT an inference server.

It serves tests/python/fake_openai_server.py (copied unchanged beside this file in the image) on
the pod network instead of 127.0.0.1, and adds what a test on a real node needs:

    stand_in.py [--host H] [--port P] [--models a,b] [--tls-cert PEM --tls-key PEM]
        defaults from env STAND_IN_HOST (0.0.0.0), STAND_IN_PORT (8000),
        STAND_IN_MODELS (fake/model-a,fake/model-b), STAND_IN_TLS_CERT, STAND_IN_TLS_KEY
        (with both, it serves HTTPS only: a backend behind a private CA, for the CA-bundle test)

  GET  /v1/models, /health, /v1/health   as the fake (llama-stack's remote::vllm lists models
                                         at start-up and checks GET <base_url minus /v1>/health)
  POST /v1/chat/completions              as the fake for non-streaming requests; streaming ones
                                         ("stream": true) get the same text as server-sent events
  GET  /debug/requests                   every request received so far (oldest first, at most
                                         1000), JSON: [{"method", "path", "authorization",
                                         "model", "stream"}], the Authorization header IN FULL,
                                         so a test can check which credential reached the backend
                                         (the test tokens are fakes)
  DELETE /debug/requests                 forgets them

SIGTERM stops it at once (it runs as PID 1, where Python would otherwise ignore the signal).
"""

import argparse
import collections
import io
import json
import os
import signal
import ssl
import sys
import time
from http.server import ThreadingHTTPServer

import fake_openai_server as fake

REPLY = "hello from the fake backend"  # the text fake_openai_server.py answers with
REQUESTS = collections.deque(maxlen=1000)

# This wrapper uses these names of the fake; fail at start, not on the first request.
for attr in ("Handler", "MODELS"):
    if not hasattr(fake, attr):
        sys.exit(f"stand_in: fake_openai_server.py has no {attr}: update stand_in.py to match it")


class Handler(fake.Handler):
    def setup(self):
        # HTTPS: the TLS handshake, here in the connection's thread (see main()).
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
        super().setup()

    def _record(self, model=None, stream=None):
        REQUESTS.append({
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "model": model,
            "stream": stream,
        })

    def _debug(self):
        if self.command == "DELETE":
            REQUESTS.clear()
            self._json(200, {"cleared": True})
        else:
            self._json(200, list(REQUESTS))

    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path.split("?", 1)[0].rstrip("/") == "/debug/requests":
            return self._debug()
        self._record()
        super().do_GET()

    def do_DELETE(self):  # noqa: N802
        if self.path.split("?", 1)[0].rstrip("/") == "/debug/requests":
            return self._debug()
        self._json(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = {}
        if not isinstance(req, dict):
            req = {}
        self._record(req.get("model"), req.get("stream"))
        if self.path.rstrip("/") == "/v1/chat/completions" and req.get("stream"):
            self._log(f"model={req.get('model')} stream=True")
            return self._stream(req)
        # The fake reads the body itself: hand it the bytes again.
        self.rfile = io.BytesIO(body)
        super().do_POST()

    def _stream(self, req):
        """The fake's reply as OpenAI chat.completion.chunk events."""
        created = int(time.time())

        def chunk(delta, finish=None, usage=None):
            c = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                 "model": req.get("model"),
                 "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                c["usage"] = usage
            return b"data: " + json.dumps(c).encode() + b"\n\n"

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": w}) for w in REPLY.replace(" ", "\0 ").split("\0")]
        events.append(chunk({}, "stop"))
        if (req.get("stream_options") or {}).get("include_usage"):
            events.append(chunk(None, usage={"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}))
        events.append(b"data: [DONE]\n\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for e in events:
            self.wfile.write(e)
            self.wfile.flush()
        self.close_connection = True


def main():
    p = argparse.ArgumentParser(description="stand-in for vLLM (a fake OpenAI-compatible server)")
    p.add_argument("--host", default=os.environ.get("STAND_IN_HOST", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(os.environ.get("STAND_IN_PORT", "8000")))
    p.add_argument("--models", default=os.environ.get("STAND_IN_MODELS", ",".join(fake.MODELS)),
                   help="comma-separated model ids that GET /v1/models lists")
    p.add_argument("--tls-cert", default=os.environ.get("STAND_IN_TLS_CERT"),
                   help="PEM certificate chain: serve HTTPS (with --tls-key)")
    p.add_argument("--tls-key", default=os.environ.get("STAND_IN_TLS_KEY"))
    args = p.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    fake.MODELS = tuple(m.strip() for m in args.models.split(",") if m.strip())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    scheme = "http"
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake runs in the request's thread, not in the accept loop.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    print(f"stand-in (fake vLLM): listening on {scheme}://{args.host}:{args.port}, models {', '.join(fake.MODELS)}",
          file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
