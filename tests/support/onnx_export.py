"""A SmolVLM (Idefics3) model directory's ONNX export in the layout its hub repositories publish, built offline.

The hub's SmolVLM repositories carry the transformers.js export next to the safetensors: three graphs under
`onnx/`, which the `onnxruntime` runtime (`livesight.backends.vlm.engine_onnx`) loads. Those cannot be
downloaded here, so tests and benches export the same three graphs, with the same input and output names,
from a random-weight model saved by `tests/support/tiny_vlm.py` or `bench/vlm.py`:

- `vision_encoder.onnx`: `pixel_values` [batch, images, 3, H, W] float, `pixel_attention_mask`
  [batch, images, H, W] bool → `image_features` [batch·images, tokens, hidden] (the vision tower and the
  connector: what the model puts in place of each image's `<image>` tokens).
- `embed_tokens.onnx`: `input_ids` [batch, length] int64 → `inputs_embeds` [batch, length, hidden].
- `decoder_model_merged.onnx`: `inputs_embeds`, `attention_mask` [batch, past + length] int64,
  `position_ids` [batch, length] int64, `past_key_values.{i}.key|value` [batch, kv heads, past, head dim]
  → `logits`, `present.{i}.key|value`. One graph for the prompt (past 0) and for each next token.

Exported with the TorchScript exporter (`dynamo=False`: the `onnx`/`onnxscript` packages are not needed).
Two simplifications, both exact for what the backend feeds: the vision side takes full tiles (image
splitting off resizes every frame to one whole tile, so every patch is real and the position ids are
0..N-1; Idefics3's bucketized position ids do not trace), and the decoder is given its causal mask as a 4-D
additive mask built from `attention_mask` (transformers' own mask construction does not trace with
dynamic lengths). `tests/backends/vlm/test_engine_onnx.py` checks the graphs against the torch model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

OPSET = 17


def without_onnx_package() -> None:
    """The TorchScript exporter imports `onnx` only to splice custom onnxscript functions into the model;
    with none (these models have none) that step returns the bytes unchanged, so skip it when `onnx` is
    absent (onnxruntime runs the file without it)."""
    if importlib.util.find_spec("onnx") is None:
        from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

        onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes


def export_smolvlm(directory: Path) -> Path:
    """Write `directory/onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx` from the model saved
    in `directory`; returns the `onnx` folder."""
    import torch
    from transformers import Idefics3ForConditionalGeneration

    without_onnx_package()
    model = Idefics3ForConditionalGeneration.from_pretrained(directory, attn_implementation="eager").eval()
    out = directory / "onnx"
    out.mkdir(exist_ok=True)
    with torch.inference_mode():
        _export_vision(model, out / "vision_encoder.onnx")
        _export_embed(model, out / "embed_tokens.onnx")
        _export_decoder(model, out / "decoder_model_merged.onnx")
    return out


def vision_module(model: Any) -> Any:
    """The vision tower + connector for full tiles: `pixel_values` [B, N, 3, H, W] → [B·N, tokens, hidden]."""
    import torch

    class Vision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vision = model.model.vision_model
            self.connector = model.model.connector

        def forward(self, pixel_values: torch.Tensor, pixel_attention_mask: torch.Tensor) -> torch.Tensor:
            b, n, c, h, w = pixel_values.shape
            # padding pixels are zero already; the product keeps the mask an input of the graph
            pixels = (pixel_values * pixel_attention_mask.unsqueeze(2).to(pixel_values.dtype)).reshape(b * n, c, h, w)
            embeddings = self.vision.embeddings
            x = embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
            x = x + embeddings.position_embedding.weight[None, : x.shape[1]]
            hidden = self.vision.encoder(inputs_embeds=x).last_hidden_state
            return self.connector(self.vision.post_layernorm(hidden))  # type: ignore[no-any-return]

    return Vision().eval()


def _export_vision(model: Any, path: Path) -> None:
    import torch

    size = model.config.vision_config.image_size
    pixels = torch.randn(1, 1, 3, size, size)
    mask = torch.ones(1, 1, size, size, dtype=torch.bool)
    torch.onnx.export(
        vision_module(model), (pixels, mask), str(path), input_names=["pixel_values", "pixel_attention_mask"],
        output_names=["image_features"], opset_version=OPSET, dynamo=False,
        dynamic_axes={"pixel_values": {0: "batch", 1: "images"}, "pixel_attention_mask": {0: "batch", 1: "images"},
                      "image_features": {0: "tiles"}},
    )  # fmt: skip


def _export_embed(model: Any, path: Path) -> None:
    import torch

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = model.get_input_embeddings()

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.embed(input_ids)  # type: ignore[no-any-return]

    ids = torch.tensor([[1, 2, 3]])
    torch.onnx.export(
        Embed().eval(), (ids,), str(path), input_names=["input_ids"], output_names=["inputs_embeds"],
        opset_version=OPSET, dynamo=False,
        dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "inputs_embeds": {0: "batch", 1: "length"}},
    )  # fmt: skip


def decoder_module(model: Any) -> Any:
    import torch
    from transformers import DynamicCache

    text = model.config.text_config
    layers = text.num_hidden_layers

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.text = model.model.text_model
            self.head = model.lm_head

        def forward(
            self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, *past: Any
        ) -> Any:
            length = inputs_embeds.shape[1]
            total = attention_mask.shape[1]
            # query i (at position total-length+i) sees key j when j <= total-length+i and the key is not padding
            q = torch.arange(length).unsqueeze(1) + (total - length)
            k = torch.arange(total).unsqueeze(0)
            visible = (k <= q).unsqueeze(0).unsqueeze(0) & attention_mask.bool()[:, None, None, :]
            mask = torch.zeros(visible.shape, dtype=inputs_embeds.dtype).masked_fill(
                ~visible, torch.finfo(inputs_embeds.dtype).min
            )
            cache = DynamicCache()
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.text(
                inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids,
                past_key_values=cache, use_cache=True,
            )  # fmt: skip
            present: list[torch.Tensor] = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (self.head(out.last_hidden_state), *present)

    return Decoder().eval()


def kv_names(layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    present = [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    return past, present


def _export_decoder(model: Any, path: Path) -> None:
    import torch

    text = model.config.text_config
    layers, heads, dim = text.num_hidden_layers, text.num_key_value_heads, text.head_dim
    past_len, length = 3, 2
    embeds = torch.randn(1, length, text.hidden_size)
    mask = torch.ones(1, past_len + length, dtype=torch.int64)
    positions = torch.arange(past_len, past_len + length).unsqueeze(0)
    past = [torch.randn(1, heads, past_len, dim) for _ in range(2 * layers)]
    past_names, present_names = kv_names(layers)
    dynamic = {
        "inputs_embeds": {0: "batch", 1: "length"},
        "attention_mask": {0: "batch", 1: "total"},
        "position_ids": {0: "batch", 1: "length"},
        "logits": {0: "batch", 1: "length"},
    }
    dynamic |= {n: {0: "batch", 2: "past"} for n in past_names} | {n: {0: "batch", 2: "total"} for n in present_names}
    torch.onnx.export(
        decoder_module(model), (embeds, mask, positions, *past), str(path),
        input_names=["inputs_embeds", "attention_mask", "position_ids", *past_names],
        output_names=["logits", *present_names], dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
    )  # fmt: skip


def quantize_int8(directory: Path) -> None:
    """`onnx/{part}_int8.onnx` from the fp32 graphs: onnxruntime's dynamic quantization (int8 weights,
    activations quantized per call: MatMulInteger), the same scheme as the hub's `_int8`/`_quantized` files.
    Needs the `onnx` package (a dev dependency)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for part in ("vision_encoder", "embed_tokens", "decoder_model_merged"):
        source = directory / "onnx" / f"{part}.onnx"
        quantize_dynamic(source, directory / "onnx" / f"{part}_int8.onnx", weight_type=QuantType.QInt8)
