"""Small knowledge documents for the RAG tests (written into pytest's tmp_path, never into the repo)."""

from __future__ import annotations

from pathlib import Path

SHAPING = """\
---
title: Potential-based shaping
kind: principle
tags: [shaping, theory]
applies_to: [any]
sources: ["Ng, Harada, Russell (1999). Policy invariance under reward transformations. ICML."]
---
# Potential-based shaping

## The shaping formula

F(s, a, s') = gamma * Phi(s') - Phi(s) preserves the optimal policy.

## When it fails

A progress bonus that is not a difference of potentials lets the agent ride in circles.
"""

POWER_TERM = """\
---
title: "UAV reward term: transmit power cost"
kind: reward-term
tags: [uav, power]
applies_to: [uav-nearfield]
sources: ["Sun et al. (2025). arXiv:2405.20568."]
---
## Power cost formula

Linear cost on the total transmit power in mW.

```reward-term
name: power
expression: -p["power_weight"] * m.power_total_mw
params:
  power_weight: {default: 0.005, low: 0.0005, high: 0.05, log: true}
requires: [power_total_mw]
applies_to: [uav-nearfield]
role: regulariser
```

## Power cost: when it hurts

Too large and the agent switches the transmitters off.

```reward-term
name: power_norm
expression: -p["power_norm_weight"] * m.power_total_mw / 2000.0
params:
  power_norm_weight: {default: 10.0, low: 1.0, high: 100.0}
role: regulariser
```
"""

TORQUE_TERM = """\
---
title: "Pendulum reward term: torque cost"
kind: reward-term
tags: [pendulum, torque]
applies_to: [pendulum]
sources: ["Gymnasium Pendulum-v1 documentation."]
---
## Torque cost

Penalise control effort: 0.001 * u^2.

```reward-term
name: torque
expression: -p["torque_weight"] * float(m.action[0]) ** 2
params:
  torque_weight: {default: 0.001, low: 0.0, high: 0.01}
requires: []
role: regulariser
```
"""

GAN_GUIDE = """\
---
title: GAN critic for TD3
kind: enhancer-guide
tags: [gan, critic]
applies_to: [any]
sources: ["Sun et al. (2025). arXiv:2405.20568."]
recommends:
  continuous: [gan+gdm, gdm, plain]
  discrete: [gan, plain]
---
## What the GAN critic does

A generator critic trained with an adversarial Bellman target; a discriminator tells target from predicted
Q-values.
"""

HACKING_PITFALL = """\
---
title: Reward hacking
kind: pitfall
tags: [hacking]
applies_to: any
sources: ["Krakovna et al. (2020). Specification gaming examples."]
---
## Boat race

The boat circles forever collecting targets instead of finishing the race.
"""

MALFORMED = """\
---
title: Broken document
kind: principle
tags: [broken
applies_to: [any]
---
## Body
text
"""

FIXTURE_DOCS = {
    "principle-shaping.md": SHAPING,
    "term-uav-power.md": POWER_TERM,
    "term-pendulum-torque.md": TORQUE_TERM,
    "enhancer-gan.md": GAN_GUIDE,
    "pitfall-hacking.md": HACKING_PITFALL,
}


def write_docs(directory: Path, docs: dict[str, str] | None = None) -> Path:
    """Write ``docs`` (file name -> text; default the fixture set plus a README) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (docs if docs is not None else FIXTURE_DOCS).items():
        (directory / name).write_text(text, encoding="utf-8")
    if docs is None:
        (directory / "README.md").write_text("# Knowledge base\n\nNo front matter here.\n", encoding="utf-8")
    return directory
