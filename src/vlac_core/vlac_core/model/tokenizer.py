"""A small tokenizer trained in-process, for tiny offline InternVL models (tests, CI, the demo).

It carries the special tokens the release's chat layout needs (BOS, ChatML's ``<|im_start|>`` and
``<|im_end|>``, InternVL's ``<img>``, ``</img>``, ``<IMG_CONTEXT>``, ``<video>``) and splits digits,
``-`` and whitespace into tokens of their own, so a number decodes digit by digit as the actor's
structured decoding expects. Nothing is downloaded: the BPE merges are learned from the VLAC prompt
texts themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from vlac_core import prompts

BOS_TOKEN = "<s>"
EOS_TOKEN = "<|im_end|>"  # the chat turn ends the answer, as in the release (eos ids include <|im_end|>)
IM_START_TOKEN = "<|im_start|>"
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
IMG_START_TOKEN = "<img>"
IMG_END_TOKEN = "</img>"
IMG_CONTEXT_TOKEN = "<IMG_CONTEXT>"
VIDEO_TOKEN = "<video>"

#: Role names InternVLProcessor reads from the tokenizer (``extra_special_tokens``).
IMAGE_SPECIAL_TOKENS = {
    "start_image_token": IMG_START_TOKEN,
    "end_image_token": IMG_END_TOKEN,
    "context_image_token": IMG_CONTEXT_TOKEN,
    "video_token": VIDEO_TOKEN,
}
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, IM_START_TOKEN, EOS_TOKEN, *IMAGE_SPECIAL_TOKENS.values())


def default_corpus() -> list[str]:
    """Texts the tiny tokenizer learns its merges from: every VLAC prompt and answer shape."""
    tasks = ["pick up the red cube", "open the drawer", "put the bowl in the sink", "fold the towel"]
    texts = [prompts.SYSTEM_PROMPT, "system", "user", "assistant"]
    for task in tasks:
        texts += [prompts.pair_progress_prompt(task), prompts.in_context_progress_prompt(task, 6)]
        texts += [prompts.done_prompt(task), prompts.actor_prompt(task, "{x: 1mm}", 2)]
    texts += ["x: -47mm, y: 19mm, z: 66mm, roll: 14 degrees, pitch: 10 degrees, yaw: 15 degrees, open: 0"]
    # every printable ASCII character, so no text the stack writes falls back to <unk>
    texts += ["".join(chr(c) for c in range(32, 127))]
    return texts


def build_tiny_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Train a BPE tokenizer on ``corpus`` (default: the VLAC prompts) and wrap it for transformers.

    Deterministic for a given corpus, so two test sessions build the same ids.
    """
    tok = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\s"), behavior="isolated"),
            pre_tokenizers.Split("-", behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    tok.decoder = decoders.Fuse()  # pieces hold their own whitespace: join them as they are
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tok.train_from_iterator(list(corpus) if corpus is not None else default_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=[IM_START_TOKEN],
        extra_special_tokens=dict(IMAGE_SPECIAL_TOKENS),
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
