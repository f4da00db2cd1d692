"""Backend `transformers`: small open vision-language models run in this process (docs/local-models.md).

- `catalog.py`: the ready ids (`livesight/smolvlm-256m`, `-500m`) and the install command of the extra.
- `backend.py`: lifecycle (weights pulled on first use, loaded once, shared), the bounded queue, streaming.
- `prompt.py`: a resolved request as chat turns + images + sampling options (no torch).
- `engine.py` / `constrain.py`: torch + transformers, and llguidance for `response_format`; imported
  only when a model loads, so a server without the `vlm` extra starts as light as before.
"""
