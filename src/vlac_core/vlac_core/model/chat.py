"""The release's chat layout and image-placeholder rules, as plain string functions.

The released VLAC checkpoints were trained with InternVL2's ``internvl2`` template; they answer well
only when the token sequence is reproduced exactly (shared VLAC_REFERENCE.md):

    <s><|im_start|>system⏎{SYSTEM}<|im_end|>⏎<|im_start|>user⏎{CONTENT}<|im_end|>⏎<|im_start|>assistant⏎

Each ``<image>`` in CONTENT becomes ``<img>`` + N x ``<IMG_CONTEXT>`` + ``</img>⏎`` (that newline is
added on top of any newline already following the placeholder), and when CONTENT holds fewer
placeholders than images the missing ones go at the very front of CONTENT (bare ``<image>``, so the
done prompt reads ``<img>…</img>⏎The 1 means yes, …``).
"""

from __future__ import annotations

from vlac_core.prompts import IMAGE_PLACEHOLDER, SYSTEM_PROMPT

from .tokenizer import BOS_TOKEN, EOS_TOKEN, IM_START_TOKEN, IMG_CONTEXT_TOKEN, IMG_END_TOKEN, IMG_START_TOKEN


def insert_missing_placeholders(content: str, n_images: int) -> str:
    """Put ``<image>`` at the very front of ``content`` for each image it has no placeholder for.

    Only the placeholder, no newline of its own (the release adds default image tags this way); the
    expansion's ``</img>⏎`` then separates the image from the text. More placeholders than images
    is an error: the model would see unfilled image slots.
    """
    n_placeholders = content.count(IMAGE_PLACEHOLDER)
    if n_placeholders > n_images:
        raise ValueError(f"prompt holds {n_placeholders} {IMAGE_PLACEHOLDER} placeholders but only {n_images} images")
    return IMAGE_PLACEHOLDER * (n_images - n_placeholders) + content


def expand_image_placeholders(content: str, image_seq_length: int) -> str:
    """Replace every ``<image>`` with ``<img>`` + ``image_seq_length`` context tokens + ``</img>⏎``."""
    if image_seq_length < 1:
        raise ValueError(f"image_seq_length must be >= 1, got {image_seq_length}")
    image_text = IMG_START_TOKEN + IMG_CONTEXT_TOKEN * image_seq_length + IMG_END_TOKEN + "\n"
    return content.replace(IMAGE_PLACEHOLDER, image_text)


def chat_prompt(content: str, system: str = SYSTEM_PROMPT, bos_token: str = BOS_TOKEN) -> str:
    """Wrap an (already expanded) user CONTENT in the release's chat layout, BOS first.

    The text ends with the assistant header, so the model's next tokens are its answer.
    """
    return (
        f"{bos_token}{IM_START_TOKEN}system\n{system}{EOS_TOKEN}\n"
        f"{IM_START_TOKEN}user\n{content}{EOS_TOKEN}\n{IM_START_TOKEN}assistant\n"
    )


def build_prompt(
    content: str, n_images: int, image_seq_length: int, system: str = SYSTEM_PROMPT, bos_token: str = BOS_TOKEN
) -> str:
    """The full text the tokenizer sees for one conversation turn with ``n_images`` images."""
    content = insert_missing_placeholders(content, n_images)
    return chat_prompt(expand_image_placeholders(content, image_seq_length), system=system, bos_token=bos_token)
