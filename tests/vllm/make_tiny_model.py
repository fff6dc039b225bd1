"""Makes the tiny random-weight Llama and its tokenizer that the vLLM tier serves.

Run with the vLLM virtualenv's python (it has torch, transformers and
tokenizers): ``python make_tiny_model.py OUT_DIR``. Deterministic: a fixed
corpus trains the tokenizer and a fixed seed draws the weights, so two runs
give the same files. Nothing is downloaded.

The tokenizer is a BPE over printable ASCII with a Metaspace pre-tokenizer
(no byte fallback), so whatever token a random model picks decodes to valid
text: streams relayed, resumed or compared byte for byte never carry
half a UTF-8 character. Hidden size 256 with 4 heads gives head_dim 64 (the
CPU attention kernel rejects 16); 2 KV heads, 2 layers, bf16.
"""

from __future__ import annotations

import json
import string
import sys
from pathlib import Path

VOCAB_SIZE = 512
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% if not loop.last or add_generation_prompt %}</s>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
WORDS_TEXT = (
    "the quick brown fox jumps over a lazy dog while gpus serve tokens to many "
    "users and the gateway routes each request to the replica with its prefix "
    "cached so that time to first token stays low under load spot capacity "
    "vanishes with notice and the fleet drains replicas before they go away "
    "one two three four five six seven eight nine ten hello world system user "
    "assistant summarise document chapter model cache block queue batch"
)
WORDS = WORDS_TEXT.split()


def corpus() -> list[str]:
    lines = []
    for i in range(4000):
        words = [WORDS[(i * 7 + j * 13 + (i * j) % 11) % len(WORDS)] for j in range(12)]
        lines.append(" ".join(words) + f" {i} " + string.punctuation[i % len(string.punctuation)])
    return lines


def make_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"],
        initial_alphabet=list(string.ascii_letters + string.digits + string.punctuation),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)


def make_model(out: Path, vocab_size: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    make_tokenizer(out)
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    make_model(out, max(len(vocab), VOCAB_SIZE))
    (out / ".gpufleet-complete").write_text("ok\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_model.py OUT_DIR")
    main(sys.argv[1])
