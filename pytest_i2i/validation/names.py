"""Names the validation front-ends offer (import-light: the CLI builds its parser from them).

- :data:`METHODS`: the correlations computed;
- :data:`CONVENTIONS`: how within-generator correlations are aggregated into one number
  (:mod:`pytest_i2i.validation.correlate` documents both);
- :data:`BUILTIN`: the bundled judgment sets (:mod:`pytest_i2i.validation.judgments.bundle`).
"""

from __future__ import annotations

METHODS = ("spearman", "kendall", "pearson")
#: convention -> the aggregate of per-model correlations that is its headline number
CONVENTIONS = {"default": "fisher_z", "viescore": "viescore"}
BUILTIN: dict[str, str] = {
    "viescore-imagenhub": "ImagenHub's 3 raters on 7 tasks, VIEScore's autometrics (LPIPS, CLIPScore, CLIP-I, DINO) "
                          "and GPT-4o / LLaVA judge sub-scores",
    "genai-bench-image-edition": "GenAI-Bench image editing: 919 human preference votes, GPT-4o / LLaVA / BLIP-2 votes",
    "tifa-human": "TIFA: 800 text-to-image faithfulness ratings (2 raters) with CLIPScore, caption metrics and TIFA",
}
