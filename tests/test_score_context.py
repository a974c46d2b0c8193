"""CLIP's text context: each score records its prompt's token count and whether the scorer cut it; status,
report and card count the cut texts; `rewrite --plan` warns when max_words can exceed the context."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
from open_clip.tokenizer import HFTokenizer
from typer.testing import CliRunner

from benchmarks.synthetic_pairs import add_pair
from curation.app.cli import app
from curation.app.report import write_report
from curation.app.status import summary
from curation.core import config as config_module
from curation.core.executor import execute
from curation.core.records import decision_record
from curation.core.text_context import max_words_warning, token_counter, tokens_per_word, words_that_fit
from curation.core.tokenizers import save_clip_tokenizer
from curation.core.workspace import Workspace
from curation.score.stage import run_score
from curation.score.text_checks import TEXT_CHECKS
from exports.export import export_version

SHORT = "a red bicycle leaning on a wall, blurry"
# 90 words of plain English: well over CLIP's 77 tokens.
LONG = ", ".join(["a red bicycle leaning on a wall under a grey sky, blurry and washed out"] * 6)


@pytest.mark.slow
def test_open_clip_and_hugging_face_tokenizers_count_the_tokens_they_cut(tmp_path: Path) -> None:
    simple = open_clip.get_tokenizer("ViT-B-32")
    count = token_counter(simple)
    assert count is not None and simple.context_length == 77
    short, long = count([SHORT, LONG])
    # The count is what the tokenizer builds before its cut: all of it fits a wide enough context...
    assert int((simple([LONG], context_length=400)[0] != 0).sum()) == long > 77
    # ...the default context holds exactly 77 of those tokens, and a short text is left whole.
    assert int((simple([LONG])[0] != 0).sum()) == 77
    assert int((simple([SHORT])[0] != 0).sum()) == short < 77
    # A Hugging Face tokenizer (same BPE vocabulary, saved and loaded as a Hub folder) counts the same.
    save_clip_tokenizer(tmp_path / "tokenizer")
    hf = HFTokenizer(str(tmp_path / "tokenizer"), context_length=77)
    hf_count = token_counter(hf)
    assert hf_count is not None and hf_count([SHORT, LONG]) == [short, long]
    assert token_counter(object()) is None  # an unknown tokenizer gives no count, never 0


def test_the_max_words_warning_follows_the_measured_tokens_per_word() -> None:
    assert words_that_fit(77, 1.25) == 60
    assert max_words_warning(60, 77, 1.25, "ViT-L-14/openai") is None
    warning = max_words_warning(90, 77, 1.25, "ViT-L-14/openai")
    assert warning is not None and "max_words = 90" in warning and "60 or fewer" in warning and "115" in warning
    assert tokens_per_word([12, 17], [5, 10]) == pytest.approx(25 / 15)  # start and end tokens left out
    assert tokens_per_word([], []) == pytest.approx(1.3)


def _accept(ws: Workspace, pair_ids: list[str]) -> None:
    ws.store.put("decision", [decision_record(p, "clip", "accept", [], {"min_fidelity": 0.0}) for p in pair_ids])


@pytest.mark.slow
def test_scores_record_truncation_and_status_report_and_card_count_it(workspace: Workspace) -> None:
    long_pair = add_pair(workspace, "a red bicycle", LONG, ["blurry"], seed=1)
    short_pair = add_pair(workspace, "a lighthouse", SHORT.replace("bicycle", "lighthouse"), ["noisy"], seed=2)
    run_score(workspace)  # builtin:tiny-clip: open_clip's own 77-token BPE tokenizer
    execute(workspace, TEXT_CHECKS)
    rows = {(r["subject_id"], r["metric"]): r for r in workspace.store.iter("score")}
    fidelity, kept = rows[(long_pair.pair_id, "fidelity")], rows[(long_pair.pair_id, "content_kept")]
    assert fidelity["text_tokens"] > 77 and fidelity["text_truncated"] is True
    assert rows[(long_pair.pair_id, "direction")]["text_truncated"] is True
    assert kept["text_tokens"] < 77 and kept["text_truncated"] is False  # the base prompt is short
    assert rows[(short_pair.pair_id, "fidelity")]["text_truncated"] is False
    assert rows[(long_pair.variant_id, "text_distance")]["text_truncated"] is True
    assert rows[(short_pair.variant_id, "text_distance")]["text_truncated"] is False
    assert rows[(long_pair.pair_id, "probe:blurry")]["text_tokens"] is None  # probes read no prompt

    assert summary(workspace)["text_context"] == {
        "variants": {"truncated": 1, "counted": 2},
        "pairs": {"truncated": 1, "counted": 2},
    }
    out = CliRunner().invoke(app, ["--workspace", str(workspace.root), "status"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "1 of 2 variant texts and 1 of 2 pairs read a prompt longer than the scorer's text context" in text
    report = write_report(workspace).read_text()
    assert "id=text-context>1 of 2 variant texts and 1 of 2 pairs" in report

    _accept(workspace, [long_pair.pair_id, short_pair.pair_id])
    result = export_version(workspace, "0.1.0")
    card = (result.path / "README.md").read_text()
    assert "1 of 2 `anti_prompt` texts and 0 of 2 `base_prompt` texts were longer than the scorer's" in card
    from datasets import load_dataset

    rows_out = load_dataset(str(result.path), split="train")
    by_id = {r["id"]: json.loads(r["provenance"])["text_tokens"] for r in rows_out}
    assert by_id[long_pair.pair_id]["anti_prompt"] == {"tokens": fidelity["text_tokens"], "truncated": True}
    assert by_id[short_pair.pair_id]["base_prompt"]["truncated"] is False


@pytest.mark.slow
def test_rewrite_plan_warns_when_max_words_can_exceed_the_scorer_context(workspace: Workspace) -> None:
    runner = CliRunner()
    base = ["--workspace", str(workspace.root)]
    assert runner.invoke(app, [*base, "prompts", "add", "--builtin", "starter"]).exit_code == 0
    config_module.set_value(workspace.config_path, "rewriter", "kind", "llm")
    config_module.set_value(workspace.config_path, "rewriter", "max_words", 90)
    out = runner.invoke(app, [*base, "rewrite", "--plan"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())  # the console wraps long lines
    assert "rewriter.max_words = 90 can exceed the context of scorer builtin:tiny-clip" in text
    fit = int(text.split("set max_words to ")[1].split(" ")[0])
    assert 30 < fit < 75  # measured on the starter prompts with the scorer's own tokenizer
    config_module.set_value(workspace.config_path, "rewriter", "max_words", fit)
    out = runner.invoke(app, [*base, "rewrite", "--plan"])
    assert out.exit_code == 0 and "can exceed the context" not in out.output
