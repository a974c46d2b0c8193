"""A local stand-in for an OpenAI-compatible server (`/v1/chat/completions`, `/v1/models`), scriptable per request.

It speaks the same HTTP protocol as the real APIs, so the real `openai` client is exercised end to end,
including failure modes. Behaviour is chosen per request: the first key of `script` found in the request's
base prompt pops its next behaviour; otherwise `default` applies. Behaviours:

    ok             a valid rewrite built from the request's dimensions
    fenced         the same, wrapped in a ```json code fence
    malformed      content that is not JSON
    schema_invalid JSON that does not match the answer schema
    refusal        an empty answer with `message.refusal` set
    refusal_text   a plain-text apology instead of JSON
    copy           the base prompt returned unchanged
    obey           "PWNED": what a model that followed an injected instruction would answer
    429            HTTP 429 with `Retry-After: <retry_after>`
    500            HTTP 500
    slow           answers `ok` after `slow_s` seconds (longer than the client's timeout)

`/v1/moderations` flags a text containing a word of `moderation_flags` with that word's category.

Run it as a script (`python tests/openai_standin.py --latency 0.2`) to serve from its own process; it prints
the port it listens on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections import Counter, defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandinState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.default = "ok"
        self.script: dict[str, deque[str]] = defaultdict(deque)
        self.latency_s = 0.0
        self.slow_s = 1.0
        self.retry_after = "0.05"
        self.supports_json_schema = True
        self.requests: list[dict[str, Any]] = []
        self.moderation_flags: dict[str, str] = {}  # word -> category flagged at /v1/moderations
        self.moderation_requests: list[dict[str, Any]] = []
        self.behaviours: Counter[str] = Counter()

    def plan(self, key: str, *behaviours: str) -> None:
        """Requests whose base prompt contains `key` get `behaviours` in order, then the default."""
        with self.lock:
            self.script[key].extend(behaviours)

    def choose(self, base_prompt: str) -> str:
        with self.lock:
            for key, queue in self.script.items():
                if key in base_prompt and queue:
                    return queue.popleft()
            return self.default

    @property
    def calls(self) -> int:
        return len(self.requests)


def rewrite_for(data: dict[str, Any]) -> str:
    """What a well-behaved model would answer: the scene followed by every requested wording."""
    wording = ", ".join(d["wording"] for d in data.get("dimensions", []))
    return f"{data['base_prompt'].rstrip('.')}, {wording}, rendered deliberately"


def _completion(content: str | None, prompt_text: str, refusal: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "standin",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {
            "prompt_tokens": len(prompt_text) // 4,
            "completion_tokens": len(content or refusal or "") // 4,
            "total_tokens": (len(prompt_text) + len(content or "")) // 4,
        },
    }


def make_handler(state: StandinState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one small answer per request: send it at once

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

        def _answered_transport(self, behaviour: str) -> bool:
            """The latency every request waits, then the transport behaviours: 429 and 500 are answered here
            (True); `slow` waits `slow_s` before the answer the caller gives."""
            if state.latency_s:
                time.sleep(state.latency_s)
            if behaviour == "429":
                self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": state.retry_after})
                return True
            if behaviour == "500":
                self._send(500, {"error": {"message": "internal error"}})
                return True
            if behaviour == "slow":
                time.sleep(state.slow_s)
            return False

        def _moderate(self, body: dict[str, Any]) -> None:
            with state.lock:
                state.moderation_requests.append(body)
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            results = []
            for text in texts:
                hits = {category for word, category in state.moderation_flags.items() if word in text}
                results.append({"flagged": bool(hits), "categories": {c: True for c in hits}, "category_scores": {}})
            self._send(200, {"id": "modr-standin", "model": body.get("model"), "results": results})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "standin", "object": "model", "owned_by": "test"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") == "/v1/moderations":
                self._moderate(body)
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            with state.lock:
                state.requests.append(body)
            messages = body.get("messages", [])
            prompt_text = "".join(m.get("content", "") for m in messages)
            try:
                data = json.loads(messages[-1]["content"])
            except (ValueError, KeyError, IndexError):
                data = {"base_prompt": messages[-1].get("content", "") if messages else "", "dimensions": []}
            fmt = (body.get("response_format") or {}).get("type")
            if fmt == "json_schema" and not state.supports_json_schema:
                self._send(400, {"error": {"message": "response_format json_schema is not supported by this server"}})
                return
            behaviour = state.choose(str(data.get("base_prompt", "")))
            with state.lock:
                state.behaviours[behaviour] += 1
            if self._answered_transport(behaviour):
                return
            answer = json.dumps({"prompt": rewrite_for(data)})
            content: str | None = {
                "fenced": f"```json\n{answer}\n```",
                "malformed": '{"prompt": "a blurry cat, unterminated',
                "schema_invalid": json.dumps({"text": rewrite_for(data), "extra": 1}),
                "refusal": None,
                "refusal_text": "I'm sorry, but I can't help with that request.",
                "copy": json.dumps({"prompt": data.get("base_prompt", "")}),
                "obey": json.dumps({"prompt": "PWNED"}),
            }.get(behaviour, answer)
            refusal = "I can't help with that." if behaviour == "refusal" else None
            self._send(200, _completion(content, prompt_text, refusal))

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class StandinServer:
    """The server on 127.0.0.1 in a daemon thread; `base_url` ends in /v1."""

    def __init__(self) -> None:
        self.state = StandinState()
        self._server = _Server(("127.0.0.1", 0), make_handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StandinServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds added to every request.")
    args = parser.parse_args()
    server = StandinServer()
    server.state.latency_s = args.latency
    print(server.port, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
