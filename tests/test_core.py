"""Core layer: enhancer combinations, designs, errors, logging hygiene, the package's public surface."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

import autogai
from autogai.core.errors import AutoGAIError, ConfigError, RewardRejectedError
from autogai.core.logging import SecretMaskingFilter, mask_secrets
from autogai.core.types import ComponentSummary, Design, DesignFeedback, EnhancerCombo
from autogai.core.validation import check_choice, check_positive_int, check_range


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("plain", "none/mlp/deterministic/mlp"),
        ("gdm", "none/mlp/diffusion/mlp"),
        ("gan", "none/mlp/deterministic/gan"),
        ("vae", "vae/mlp/deterministic/mlp"),
        ("transformer", "none/transformer/deterministic/mlp"),
        ("gdm+gan", "none/mlp/diffusion/gan"),
        ("gdm+gan+transformer", "none/transformer/diffusion/gan"),
        ("gdm+gan+transformer+vae", "vae/transformer/diffusion/gan"),
        ("VAE+GDM", "vae/mlp/diffusion/mlp"),
        ("GDM-GAN-Transformer-VAE", "vae/transformer/diffusion/gan"),
        ("vae/transformer/diffusion/gan", "vae/transformer/diffusion/gan"),
    ],
)
def test_enhancer_names_parse_to_slots(text: str, slots: str) -> None:
    combo = EnhancerCombo.parse(text)
    assert combo.slot_name == slots
    assert EnhancerCombo.parse(combo.short_name) == combo
    assert EnhancerCombo.parse(combo.slot_name) == combo


def test_all_sixteen_combinations_are_distinct_and_plain_first() -> None:
    combos = EnhancerCombo.all_combinations()
    assert len(combos) == 16 == len({c.slot_name for c in combos})
    assert combos[0] == EnhancerCombo()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("gdm+gann", "unknown enhancer 'gann'"),
        ("vae/mlp/diffusion", "needs 4 parts"),
        ("none/cnn/deterministic/mlp", "backbone='cnn' is not valid; choose one of: mlp, transformer"),
    ],
)
def test_bad_enhancer_names_name_the_valid_ones(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("+", r"\+")):
        EnhancerCombo.parse(text)


def test_design_id_is_a_stable_content_hash() -> None:
    source = "def compute_reward(m, p):\n    return m.rate_df, {'rate': m.rate_df}\n"
    a = Design(reward_source=source, enhancers=EnhancerCombo.parse("gdm"), rationale="x")
    b = Design(reward_source=source + "\n", enhancers=EnhancerCombo.parse("gdm"), rationale="other words")
    c = Design(reward_source=source, enhancers=EnhancerCombo.parse("gan"))
    assert a.id == b.id  # rationale and trailing whitespace do not change behaviour
    assert a.id != c.id
    restored = Design.from_dict(json.loads(json.dumps(a.to_dict())))
    assert restored == a and restored.id == a.id


def test_feedback_text_carries_score_components_and_errors() -> None:
    feedback = DesignFeedback(
        design_id="d-1",
        name="rate-power",
        enhancers="gdm",
        reward_source="...",
        score_mean=40.0,
        score_ci=(38.5, 41.2),
        baseline_score=31.0,
        components={"power": ComponentSummary(-8.0, -10.0, -1.0, (-10.0, -5.0, -1.0), -0.4)},
        violation_rates={"out_of_area": 0.25},
        errors=("trial 3: reward returned nan",),
    )
    text = feedback.to_text()
    for fragment in (
        "fitness score 40",
        "[95% CI 38.5, 41.2]",
        "baseline design 31",
        "component power",
        "corr. with fitness -0.40",
        "out_of_area 25.0%",
        "reward returned nan",
    ):
        assert fragment in text


def test_validation_helpers_name_value_and_choices() -> None:
    with pytest.raises(ConfigError, match=r"mode='x' is not valid; choose one of: 'a', 'b'"):
        check_choice("mode", "x", ["a", "b"])
    with pytest.raises(ConfigError, match=r"power=-1 must be >= 0"):
        check_range("power", -1, 0)
    with pytest.raises(ConfigError, match="finite"):
        check_range("lr", float("nan"), 0)
    with pytest.raises(ConfigError, match="positive integer"):
        check_positive_int("steps", 0)


def test_reward_rejection_message_names_stage_and_line() -> None:
    error = RewardRejectedError("import is not allowed", stage="syntax", line=3)
    assert str(error) == "reward program rejected at syntax (line 3): import is not allowed"
    assert isinstance(error, AutoGAIError)


def test_secrets_are_masked_in_logs() -> None:
    assert "sk-abcdefghijkl" not in mask_secrets("key sk-abcdefghijklmnop used")
    record = logging.LogRecord("autogai", logging.INFO, __file__, 1, "auth %s", ("Bearer abc.def",), None)
    SecretMaskingFilter().filter(record)
    assert "abc.def" not in record.getMessage()


def test_public_api_is_pinned() -> None:
    assert sorted(autogai.__all__) == ["AutoGAIError", "Design", "EnhancerCombo", "__version__"]


def test_import_autogai_stays_cheap() -> None:
    code = (
        "import sys, autogai, autogai.cli.main as cli\n"
        "cli._register_commands()\n"
        "heavy = [m for m in ('torch', 'optuna', 'langchain', 'langchain_core', 'chromadb',"
        " 'sentence_transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported at start-up: {out.stdout.strip()}"


def test_cli_usage_error_is_one_message_without_traceback() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "autogai.cli.main", "no-such-verb"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "No such command" in out.stderr and "Traceback" not in out.stderr
