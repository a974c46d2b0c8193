"""The vision stand-in through the real `openai` client: answers follow the images, failures look like a server's."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import openai
import pytest
from openai import OpenAI
from PIL import Image

from tests.vision_standin import VisionStandin, expected_choice, roughness

pytestmark = pytest.mark.slow  # every test starts the vision stand-in server

QUALITIES = [{"id": "noise", "name": "Noise"}, {"id": "blur", "name": "Blur"}]


def png(pixels: np.ndarray, kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(out, kind, **({"quality": 90} if kind == "JPEG" else {}))
    return out.getvalue()


def smooth() -> bytes:
    ramp = np.linspace(60, 200, 64)  # a gentle gradient: about 2/255 between neighbours
    return png(np.repeat(np.tile(ramp, (64, 1))[..., None], 3, axis=2))


def noisy(kind: str = "PNG") -> bytes:
    return png(np.random.default_rng(0).integers(0, 256, (64, 64, 3)), kind)


def data_url(image: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(image).decode()}"


def messages(prompt: str, a: str, b: str, qualities: list[dict[str, str]] = QUALITIES) -> list[Any]:
    request = json.dumps({"prompt": prompt, "qualities": qualities})
    return [
        {"role": "system", "content": "Pick the image that follows the prompt. Answer JSON."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": request},
                {"type": "text", "text": "Image A:"},
                {"type": "image_url", "image_url": {"url": a}},
                {"type": "text", "text": "Image B:"},
                {"type": "image_url", "image_url": {"url": b}},
            ],
        },
    ]


@pytest.fixture
def server() -> Iterator[VisionStandin]:
    with VisionStandin() as running:
        yield running


def client(server: VisionStandin, **options: Any) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="x", max_retries=0, **options)


def ask(server: VisionStandin, prompt: str, a: str, b: str, **options: Any) -> Any:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": {"type": "object"}}}
    return client(server, **options).chat.completions.create(
        model="vlm", messages=messages(prompt, a, b), response_format=fmt
    )


def verdict(completion: Any) -> dict[str, Any]:
    return dict(json.loads(completion.choices[0].message.content))


def test_the_choice_follows_the_rough_image_in_either_order(server: VisionStandin) -> None:
    rough, flat = noisy(), smooth()
    assert roughness(rough) > 0.2 and roughness(flat) < 0.02
    first = verdict(ask(server, "a cat, grainy", data_url(rough), data_url(flat)))
    second = verdict(ask(server, "a cat, grainy", data_url(flat), data_url(rough)))
    assert first["choice"] == expected_choice(rough, flat) == "A"
    assert second["choice"] == expected_choice(flat, rough) == "B"
    assert first["qualities"] == ["noise", "blur"] and first["subject_recognisable"] is True and first["reason"]
    parsed = server.state.parsed[0]
    assert parsed.prompt == "a cat, grainy" and parsed.qualities == QUALITIES and parsed.model == "vlm"
    assert parsed.images == (rough, flat) and parsed.media_types == ("image/png", "image/png")
    assert parsed.roughness == (roughness(rough), roughness(flat))
    assert parsed.response_format == "json_schema" and server.state.calls == 2


def test_like_images_tie_with_no_qualities(server: VisionStandin) -> None:
    completion = ask(server, "a cat", data_url(smooth()), data_url(smooth()))
    assert verdict(completion)["choice"] == "tie" and verdict(completion)["qualities"] == []
    assert completion.usage is not None and completion.usage.prompt_tokens >= 2 * server.state.image_tokens
    server.state.usage = False
    assert ask(server, "a cat", data_url(smooth()), data_url(smooth())).usage is None


def test_an_unrequested_quality_can_be_named(server: VisionStandin) -> None:
    server.state.plan("cat", "unknown_quality")
    answer = verdict(ask(server, "a cat", data_url(noisy()), data_url(smooth())))
    assert answer["choice"] == "A" and answer["qualities"] == ["noise", "blur", "not-requested"]


def test_jpeg_data_urls_decode_too(server: VisionStandin) -> None:
    rough = noisy("JPEG")
    answer = verdict(ask(server, "a cat", data_url(smooth()), data_url(rough, "image/jpeg")))
    assert answer["choice"] == "B" and server.state.parsed[0].media_types == ("image/png", "image/jpeg")


def test_always_a_answers_a_whatever_the_images(server: VisionStandin) -> None:
    server.state.plan("biased", "always_a")
    assert verdict(ask(server, "a biased cat", data_url(smooth()), data_url(noisy())))["choice"] == "A"
    assert verdict(ask(server, "a biased cat", data_url(smooth()), data_url(noisy())))["choice"] == "B"  # plan used up
    assert server.state.behaviours["always_a"] == 1
    # It never looks at the images, so it never decodes them: unreadable data passes, where `ok` refuses it.
    unreadable = "data:image/png;base64,bm90IGFuIGltYWdl"
    server.state.plan("blind", "always_a")
    assert verdict(ask(server, "a blind cat", unreadable, unreadable))["choice"] == "A"
    with pytest.raises(openai.BadRequestError, match="image A: the data URL does not hold a readable image"):
        ask(server, "a blind cat", unreadable, unreadable)


def test_failures_look_like_a_server_s(server: VisionStandin) -> None:
    a, b = data_url(noisy()), data_url(smooth())
    server.state.plan("cat", "429", "500", "malformed", "schema_invalid", "refusal", "refusal_text")
    with pytest.raises(openai.RateLimitError) as limited:
        ask(server, "a cat", a, b)
    assert limited.value.response.headers["retry-after"] == server.state.retry_after
    with pytest.raises(openai.InternalServerError):
        ask(server, "a cat", a, b)
    with pytest.raises(json.JSONDecodeError):
        verdict(ask(server, "a cat", a, b))
    assert verdict(ask(server, "a cat", a, b))["choice"] not in ("A", "B", "tie")
    refused = ask(server, "a cat", a, b).choices[0].message
    assert refused.content is None and refused.refusal
    assert "sorry" in (ask(server, "a cat", a, b).choices[0].message.content or "")
    assert verdict(ask(server, "a cat", a, b))["choice"] == "A"  # the plan is spent: back to the default


def test_slow_answers_outlast_a_short_timeout(server: VisionStandin) -> None:
    server.state.default, server.state.slow_s = "slow", 1.0
    with pytest.raises(openai.APITimeoutError):
        ask(server, "a cat", data_url(noisy()), data_url(smooth()), timeout=0.3)


def test_json_schema_can_be_refused_and_off_protocol_requests_are_named(server: VisionStandin) -> None:
    with pytest.raises(openai.BadRequestError, match="image B: the data URL does not hold a readable image"):
        ask(server, "a cat", data_url(noisy()), "data:image/png;base64,bm90IGFuIGltYWdl")
    server.state.supports_json_schema = False
    with pytest.raises(openai.BadRequestError, match="response_format"):
        ask(server, "a cat", data_url(noisy()), data_url(smooth()))
    with pytest.raises(openai.BadRequestError, match="data:image/png;base64"):
        client(server).chat.completions.create(
            model="vlm",
            messages=messages("a cat", "https://example.com/a.png", data_url(smooth())),
            response_format={"type": "json_object"},
        )
    wrong = messages("a cat", data_url(noisy()), data_url(smooth()))
    wrong[1]["content"][1]["text"] = "First image:"
    with pytest.raises(openai.BadRequestError, match="'Image A:'"):
        client(server).chat.completions.create(model="vlm", messages=wrong)
    assert server.state.parsed == []


def test_many_requests_overlap_their_latency(server: VisionStandin) -> None:
    server.state.latency_s = 0.2
    a, b, shared = data_url(noisy()), data_url(smooth()), client(server)
    concurrency = 64

    def one(i: int) -> str:
        completion = shared.chat.completions.create(model="vlm", messages=messages(f"cat {i}", a, b))
        return str(verdict(completion)["choice"])

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        choices = list(pool.map(one, range(concurrency)))
    elapsed = time.perf_counter() - started
    assert choices == ["A"] * concurrency
    assert elapsed < concurrency * 0.2 / 8  # served one after another it would take 12.8 s
    assert server.state.max_in_flight >= concurrency // 2 and server.state.in_flight == 0
