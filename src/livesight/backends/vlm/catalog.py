"""The in-process models offered without configuration, and what they need installed.

A ready id is a `ModelConfig` like any `[[models]]` entry with `backend = "transformers"`; an entry with
the same id in the config file replaces it. Both are SmolVLM v1 (the Idefics3 architecture), whose
processor works without torchvision. `max_frames` 8: on a 2-core CPU each frame costs 64 image tokens
(one 512×512 tile, image splitting off), so 8 frames are a ~600-token prompt (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util

from livesight.settings import ModelConfig

READY: dict[str, str] = {
    "livesight/smolvlm-256m": "HuggingFaceTB/SmolVLM-256M-Instruct",
    "livesight/smolvlm-500m": "HuggingFaceTB/SmolVLM-500M-Instruct",
}
# what each runtime imports; "auto" may end on either, and needs torch only when it ends on transformers
# (checked again when the model loads, `backend.default_engine_factory`)
EXTRA_MODULES = {
    "transformers": ("torch", "transformers", "llguidance"),
    "onnxruntime": ("onnxruntime", "transformers", "llguidance"),
    "auto": ("transformers", "llguidance"),
}
INSTALL = "make vlm  (or: .venv/bin/pip install -e '.[vlm]')"
# onnxruntime, transformers and llguidance are in the default install: missing, the install is broken
REINSTALL = "make setup  (or: .venv/bin/pip install -e .)"


def install_hint(runtime: str) -> str:
    """What to run to install `runtime`: torch is the `vlm` extra, the rest is the default install."""
    return INSTALL if runtime == "transformers" else REINSTALL


def ready_config(model_id: str) -> ModelConfig:
    return ModelConfig(
        id=model_id,
        backend="transformers",
        weights=READY[model_id],
        image=True,
        video=True,
        max_frames=8,
        timeout_s=300,
        owned_by="livesight",
    )


def missing_modules(runtime: str) -> list[str]:
    """The modules `runtime` needs that are not installed (found without importing them)."""
    return [name for name in EXTRA_MODULES[runtime] if importlib.util.find_spec(name) is None]
