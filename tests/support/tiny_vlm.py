"""Tiny random-weight vision-language models, built offline at test time (shared/notes/model-backends.md §5).

`build_idefics3(dir)` makes a SmolVLM-v1-architecture model (Idefics3) and `build_qwen2vl(dir)` a Qwen2-VL
one, each with a byte-level BPE tokenizer trained on a few sentences, a chat template like the real
models' and a small image processor, saved the way a hub repository is (config.json, model.safetensors,
tokenizer files, preprocessor_config.json). Their output is gibberish by design; what they exercise is
the real load / processor / generate path. Building one takes about a second after torch is imported.
"""

from __future__ import annotations

from pathlib import Path

_SENTENCES = [
    "A person walks past the loading dock while a truck backs in.",
    "The camera shows a parking lot with three cars and one bicycle.",
    '{"answer": "yes", "count": 3, "objects": ["car", "person"], "ok": true}',
    "What do you see? Describe the scene in one sentence.",
    "0123456789 +-.,:;!?()[]{}<>/\\ abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]

IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}: {{ message['content'] }}{% else %}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer(specials: list[str], eos: str, template: str, pad: str) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_SENTENCES * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad)
    fast.chat_template = template
    return fast


def build_idefics3(directory: Path) -> Path:
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>"]
    specials += ["<global-img>"] + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    tokenizer = _tokenizer(specials, "<end_of_utterance>", IDEFICS3_TEMPLATE, "<|endoftext|>")
    vocab = len(tokenizer)  # type: ignore[arg-type]
    torch.manual_seed(0)
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 64,
            "patch_size": 16,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
        },
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),  # type: ignore[attr-defined]
    )
    config.text_config.eos_token_id = tokenizer.eos_token_id  # type: ignore[attr-defined]
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id  # type: ignore[attr-defined]
    images = Idefics3ImageProcessorPil(size={"longest_edge": 128}, max_image_size={"longest_edge": 64})
    processor = Idefics3Processor(
        image_processor=images, tokenizer=tokenizer, image_seq_len=(64 // 16) ** 2 // 4, chat_template=IDEFICS3_TEMPLATE
    )
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_qwen2vl(directory: Path) -> Path:
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
    specials += ["<|image_pad|>", "<|video_pad|>"]
    tokenizer = _tokenizer(specials, "<|im_end|>", QWEN_TEMPLATE, "<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids  # type: ignore[attr-defined]
    torch.manual_seed(0)
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),  # type: ignore[arg-type]
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "bos_token_id": tokenizer.eos_token_id,  # type: ignore[attr-defined]
            "eos_token_id": tokenizer.eos_token_id,  # type: ignore[attr-defined]
            "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2]},
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 64,
            "num_heads": 4,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id  # type: ignore[attr-defined]
    images = Qwen2VLImageProcessorPil(
        size={"shortest_edge": 4 * 28 * 28, "longest_edge": 16 * 28 * 28},
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)  # type: ignore[attr-defined]
    images.save_pretrained(directory)
    return directory
