"""A local stand-in for an OpenAI-compatible vision server, speaking the judge's protocol and deciding from the images.

The real `openai` client talks to it end to end (`/v1/chat/completions`, `/v1/models`), failure modes included.

The request the judge sends (anything else is answered 400 with what is wrong):

    messages: [
      {"role": "system", "content": "<instructions>"},
      {"role": "user", "content": [
        {"type": "text", "text": "{\"prompt\": <anti-aesthetic prompt>, \"qualities\": [{\"id\": .., \"name\": ..}]}"},
        {"type": "text", "text": "Image A:"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}},    (or data:image/jpeg)
        {"type": "text", "text": "Image B:"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}]}]
    response_format: {"type": "json_schema", ...} or {"type": "json_object"}
      (json_schema answers 400 naming response_format when `supports_json_schema` is False)

The answer's content is JSON:

    {"choice": "A" | "B" | "tie", "qualities": [requested ids the chosen image shows],
     "subject_recognisable": true | false, "reason": "<short text>"}

It decides from the images themselves, so a test can check the answers: the image that follows the anti-aesthetic
prompt is the rougher one, roughness being the mean absolute difference between horizontally adjacent pixels of the
greyscale image on a 0-1 scale (noise is rough, a flat colour or a gentle gradient is smooth). Within `tie_margin`
of each other the answer is a tie. A chosen side shows every requested quality, a tie none; the subject is always
recognisable. `expected_choice` computes the same answer from two stored images (an image the judge resized or
re-encoded changes its roughness a little: expect agreement where the two differ well beyond the margin). Images
are decoded (once per distinct image) only by the behaviours that answer from them, and an unreadable one is then
answered 400; `always_a` and the failure behaviours never decode, which keeps a benchmark's stand-in nearly free.

Behaviour is chosen per request: the first key of `state.plan` found in the request's prompt pops its next
behaviour; otherwise `state.default` applies. Behaviours:

    ok              the answer from the images
    always_a        "A" whatever the images (a position-biased model)
    fenced          the `ok` answer wrapped in a ```json code fence
    unknown_quality the `ok` answer naming a quality that was not requested as well
    malformed       content that is not JSON
    schema_invalid  JSON that does not match the answer schema
    refusal         an empty answer with `message.refusal` set
    refusal_text    a plain-text apology instead of JSON
    429             HTTP 429 with `Retry-After: <retry_after>`
    500             HTTP 500
    slow            answers `ok` after `slow_s` seconds (longer than the client's timeout)

`state` also records every request (raw in `requests`, parsed in `parsed`), counts behaviours, tracks the most
requests in flight at once (`max_in_flight`), adds `latency_s` to every request, and reports token `usage` (text
characters / 4 plus `image_tokens` per image) unless `usage` is False. Requests are served on a thread each, so
many at once overlap their latency rather than queue (64 at 0.2 s finish in well under a second). For a throughput benchmark,
serve it from its own process so its work does not share the judge's interpreter.

Run it as a module from the repository root (`python -m tests.vision_standin --latency 0.2`) to serve from its own
process; it prints the port it listens on.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import io
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from tests.openai_standin import StandinServer, StandinState, _completion, _Server, make_handler

TIE_MARGIN = 0.02
MEDIA_TYPES = ("image/png", "image/jpeg")
DECIDING = ("ok", "always_a", "fenced", "unknown_quality", "slow")  # behaviours whose answer carries a verdict


class ProtocolError(ValueError):
    """A request off the judge's protocol: answered 400 with this message."""


@dataclass(frozen=True)
class VisionRequest:
    """One chat request as the stand-in understood it."""

    model: str
    system: str
    prompt: str
    qualities: list[dict[str, str]]
    urls: tuple[str, str]  # the data URLs of images A and B
    response_format: str | None  # "json_schema", "json_object" or None
    behaviour: str

    @property
    def media_types(self) -> tuple[str, str]:
        a, b = (url.removeprefix("data:").partition(";")[0] for url in self.urls)
        return a, b

    @property
    def images(self) -> tuple[bytes, bytes]:
        """The image files as sent, A then B."""
        a, b = (base64.b64decode(url.partition(",")[2]) for url in self.urls)
        return a, b

    @property
    def roughness(self) -> tuple[float, float]:
        """Each image's roughness; ProtocolError when one is not a readable image."""
        return _url_roughness(self.urls[0], "A"), _url_roughness(self.urls[1], "B")


def roughness(image: bytes) -> float:
    """Mean absolute difference between horizontally adjacent greyscale pixels, 0 (flat) to 1."""
    with Image.open(io.BytesIO(image)) as opened:
        grey = np.asarray(opened.convert("L"), dtype=np.int16)
    return float(np.abs(np.diff(grey, axis=1)).mean() / 255) if grey.shape[1] > 1 else 0.0


def _choice(a: float, b: float, tie_margin: float) -> str:
    return "tie" if abs(a - b) <= tie_margin else "A" if a > b else "B"


def expected_choice(png_a: bytes, png_b: bytes, tie_margin: float = TIE_MARGIN) -> str:
    """The stand-in's `ok` choice for images A and B (any format Pillow reads): "A", "B" or "tie"."""
    return _choice(roughness(png_a), roughness(png_b), tie_margin)


@functools.lru_cache(maxsize=128)
def _url_roughness(url: str, label: str) -> float:
    # Both orders of a pair send the same images: each is decoded once (a 768² JPEG costs ~3-6 ms to decode, CPU a
    # benchmark on the same machine would otherwise take from the judge).
    try:
        return roughness(base64.b64decode(url.partition(",")[2], validate=True))
    except (binascii.Error, UnidentifiedImageError, OSError) as error:
        raise ProtocolError(f"image {label}: the data URL does not hold a readable image ({error})") from error


class VisionState(StandinState):
    def __init__(self) -> None:
        super().__init__()
        self.tie_margin = TIE_MARGIN
        self.usage = True
        self.image_tokens = 256
        self.parsed: list[VisionRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


def _image(part: Any, label: str) -> str:
    if not isinstance(part, dict) or part.get("type") != "image_url":
        raise ProtocolError(f"image {label}: expected an image_url content part")
    url = str((part.get("image_url") or {}).get("url", ""))
    header = url.partition(",")[0]
    if header not in (f"data:{media_type};base64" for media_type in MEDIA_TYPES):
        raise ProtocolError(f"image {label}: expected a data:image/png;base64 or data:image/jpeg;base64 URL")
    return url


def parse_request(body: dict[str, Any]) -> tuple[str, str, list[dict[str, str]], tuple[str, str]]:
    """System text, prompt, qualities and the two image data URLs of a judge request; ProtocolError if it is off
    protocol (the images themselves are decoded only by the behaviours that look at them)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or [m.get("role") for m in messages if isinstance(m, dict)] != ["system", "user"]:
        raise ProtocolError("expected two messages: system, then user")
    parts = messages[1].get("content")
    if not isinstance(parts, list) or len(parts) != 5:
        raise ProtocolError(
            "the user message's content must be 5 parts: request JSON, 'Image A:', image, 'Image B:', image"
        )
    texts = [p.get("text") if isinstance(p, dict) and p.get("type") == "text" else None for p in parts[:2] + parts[3:4]]
    if texts[1:] != ["Image A:", "Image B:"]:
        raise ProtocolError("content parts 2 and 4 must be the text parts 'Image A:' and 'Image B:'")
    try:
        request = json.loads(texts[0] or "")
        prompt, qualities = str(request["prompt"]), list(request["qualities"])
        qualities = [{"id": str(q["id"]), "name": str(q["name"])} for q in qualities]
    except (ValueError, KeyError, TypeError) as error:
        raise ProtocolError(
            f'the first part must be JSON {{"prompt": ..., "qualities": [{{"id", "name"}}]}} ({error})'
        ) from error
    return str(messages[0].get("content", "")), prompt, qualities, (_image(parts[2], "A"), _image(parts[4], "B"))


def answer_for(state: VisionState, request: VisionRequest) -> dict[str, Any]:
    """What a well-behaved vision model answers: the rougher image, with every requested quality."""
    if request.behaviour == "always_a":
        choice, reason = "A", "image A"
    else:
        a, b = request.roughness
        choice, reason = _choice(a, b, state.tie_margin), f"roughness A {a:.3f}, B {b:.3f}"
    return {
        "choice": choice,
        "qualities": [] if choice == "tie" else [q["id"] for q in request.qualities],
        "subject_recognisable": True,
        "reason": reason,
    }


def make_vision_handler(state: VisionState) -> type[BaseHTTPRequestHandler]:
    base: Any = make_handler(state)  # its JSON sending, quiet log and /v1/models

    class Handler(base):  # type: ignore[misc]
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            state.enter()
            try:
                self._complete(body)
            finally:
                state.leave()

        def _complete(self, body: dict[str, Any]) -> None:
            with state.lock:
                state.requests.append(body)
            fmt = (body.get("response_format") or {}).get("type")
            if fmt == "json_schema" and not state.supports_json_schema:
                self._send(400, {"error": {"message": "response_format json_schema is not supported by this server"}})
                return
            try:
                system, prompt, qualities, urls = parse_request(body)
                behaviour = state.choose(prompt)
                request = VisionRequest(str(body.get("model", "")), system, prompt, qualities, urls, fmt, behaviour)
                verdict = answer_for(state, request) if behaviour in DECIDING else {}
            except ProtocolError as error:
                self._send(400, {"error": {"message": f"vision stand-in: {error}"}})
                return
            with state.lock:
                state.parsed.append(request)
                state.behaviours[behaviour] += 1
            if self._answered_transport(behaviour):
                return
            if behaviour == "unknown_quality":
                verdict["qualities"] = [*verdict["qualities"], "not-requested"]
            answer = json.dumps(verdict)
            content: str | None = {
                "fenced": f"```json\n{answer}\n```",
                "malformed": '{"choice": "A", "qualities": [unterminated',
                "schema_invalid": json.dumps({"choice": "left", "qualities": "all"}),
                "refusal": None,
                "refusal_text": "I'm sorry, but I can't compare these images.",
            }.get(behaviour, answer)
            refusal = "I can't help with that." if behaviour == "refusal" else None
            text = system + json.dumps({"prompt": prompt, "qualities": qualities})
            completion = _completion(content, text, refusal)
            if state.usage:
                usage = completion["usage"]
                usage["prompt_tokens"] += 2 * state.image_tokens
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            else:
                del completion["usage"]
            self._send(200, completion)

    return Handler


class VisionStandin(StandinServer):
    """The server on 127.0.0.1 (a free port) in a daemon thread; `base_url` ends in /v1. A context manager too."""

    def __init__(self) -> None:
        self.state: VisionState = VisionState()
        self._server = _Server(("127.0.0.1", 0), make_vision_handler(self.state))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> VisionStandin:
        super().start()
        return self

    def __enter__(self) -> VisionStandin:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds added to every request.")
    parser.add_argument(
        "--tie-margin", type=float, default=TIE_MARGIN, help="Roughness difference within which to tie."
    )
    parser.add_argument("--default", default="ok", help="The behaviour of every request (ok, always_a, 429, ...).")
    args = parser.parse_args()
    server = VisionStandin()
    server.state.latency_s, server.state.tie_margin, server.state.default = args.latency, args.tie_margin, args.default
    print(server.port, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
