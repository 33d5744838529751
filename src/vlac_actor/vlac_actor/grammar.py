"""The action template as a token-level automaton: what structured decoding may emit, and nothing else.

The template ``{x: Xmm, ..., open: O}`` is split into fixed text and seven numeric fields. Fixed text is
teacher-forced; only the numbers are chosen by the model. Each field's allowed numbers (translations
within ``±max_translation_mm``, angles within ``±max_rotation_deg``, ``open`` in {0, 1}) are tokenized
one by one with the model's own tokenizer and stored as a trie, so

- only tokens that can still become an in-range number are ever offered (derived from the vocabulary,
  no hard-coded ids: " -47" is " ", "-", "4", "7" in the tiny tokenizer and " -", "4", "7" in Qwen2);
- every action has exactly one token sequence (its *canonical* tokenization), so the trainer can
  re-score an action from its text alone and get the very log-probs the sampler recorded;
- "the number ends here" is itself a decision: it is the first token of the following fixed text.

A node with a single way out is forced (no log-prob); a node with two or more is a *decision*, and
only decisions carry log-probs. The space before each number belongs to the field (``" -47"``), because
real tokenizers fuse it with the sign.

Changing ``max_translation_mm`` or ``max_rotation_deg`` changes which tokens are allowed and so the
log-probs: the actor and the trainer must build the grammar with the same limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from vlac_core.action_text import TEMPLATE_FIELDS, format_action
from vlac_core.types import ACTION_FIELDS, DeltaAction

#: Text the tokenizer sees in front of every piece: the assistant header ends with a newline, and
#: sentencepiece tokenizers would otherwise add a word-start marker to a piece tokenized alone.
_ANCHOR = "\n"
#: Most values one field may take; the trie is built eagerly from all of them.
MAX_FIELD_VALUES = 20_001


class GrammarError(ValueError):
    """The tokenizer cannot express the action template unambiguously; the message names the piece."""


@dataclass(frozen=True)
class ActionLimits:
    """Ranges structured decoding keeps every field in (inclusive)."""

    max_translation_mm: int = 100
    max_rotation_deg: int = 180

    def __post_init__(self) -> None:
        if not 1 <= self.max_translation_mm <= (MAX_FIELD_VALUES - 1) // 2:
            raise ValueError(
                f"max_translation_mm must be 1..{(MAX_FIELD_VALUES - 1) // 2}, got {self.max_translation_mm}"
            )
        if not 1 <= self.max_rotation_deg <= 180:
            raise ValueError(f"max_rotation_deg must be 1..180, got {self.max_rotation_deg}")

    def field_range(self, field_index: int) -> tuple[int, int]:
        """(lowest, highest) value of field ``field_index`` in template order."""
        if field_index < 3:
            return -self.max_translation_mm, self.max_translation_mm
        if field_index < 6:
            return -self.max_rotation_deg, self.max_rotation_deg
        return 0, 1


def fixed_segments() -> list[str]:
    """The template's fixed text between the numbers: ``"{x:"``, ``"mm, y:"``, ..., ``" degrees, open:"``, ``"}"``."""
    segments = []
    previous_unit = None
    for name, unit in TEMPLATE_FIELDS:
        segments.append(("{" if previous_unit is None else previous_unit + ", ") + name + ":")
        previous_unit = unit
    segments.append(previous_unit + "}")
    return segments


def _encode_pieces(tokenizer, pieces: list[str]) -> list[tuple[int, ...]]:
    """Token ids of each piece as it reads after a newline, checked to decode back to the piece."""
    anchor = tokenizer(_ANCHOR, add_special_tokens=False)["input_ids"]
    encoded = tokenizer([_ANCHOR + p for p in pieces], add_special_tokens=False)["input_ids"]
    out = []
    for piece, ids in zip(pieces, encoded, strict=True):
        if ids[: len(anchor)] != anchor:
            raise GrammarError(f"tokenizer merges the text {piece!r} with the newline before it")
        rest = tuple(ids[len(anchor) :])
        if not rest:
            raise GrammarError(f"tokenizer encodes {piece!r} to no tokens")
        out.append(rest)
    # one batched decode check: a tokenizer that drops or adds characters cannot be decoded faithfully
    decoded = tokenizer.batch_decode([list(anchor) + list(ids) for ids in out], skip_special_tokens=False)
    for piece, text in zip(pieces, decoded, strict=True):
        if text != _ANCHOR + piece:
            raise GrammarError(f"tokenizer does not decode {piece!r} back to itself (got {text[len(_ANCHOR) :]!r})")
    return out


class ActionGrammar:
    """Token automaton of the action template for one tokenizer and one set of limits.

    Nodes are ints; ``transitions[node]`` maps a token id to the next node. ``start`` is before the
    first token, ``final`` after the closing brace. ``ends[(node, token)]`` = (field index, value) marks
    the transitions that close a number.
    """

    def __init__(self, tokenizer, limits: ActionLimits | None = None) -> None:
        self.limits = limits or ActionLimits()
        self.transitions: list[dict[int, int]] = []
        self.ends: dict[tuple[int, int], tuple[int, int]] = {}
        #: canonical token ids of every allowed value, per field
        self.value_ids: list[dict[int, tuple[int, ...]]] = []
        segments = fixed_segments()
        segment_ids = _encode_pieces(tokenizer, segments)
        self.segment_ids = segment_ids
        self._allowed: dict[int, tuple[int, ...]] = {}
        self.start = self._new_node()
        open_numbers: dict[int, int] = {}  # complete trie node -> value of the field just built
        entry = self.start
        field_nodes: list[range] = []  # per field: its trie's nodes (root first; created in one run)
        for k, ids in enumerate(segment_ids):
            entry = self._add_fixed(k, segments[k], ids, entry, open_numbers)
            if k == len(ACTION_FIELDS):
                break
            open_numbers = self._add_field(tokenizer, k, entry)
            field_nodes.append(range(entry, len(self.transitions)))
        self.final = entry
        self._node_field = [-1] * len(self.transitions)
        for k, nodes in enumerate(field_nodes):
            for node in nodes:
                self._node_field[node] = k
        self._check_template(tokenizer)

    def _new_node(self) -> int:
        self.transitions.append({})
        return len(self.transitions) - 1

    def _add_fixed(self, k: int, text: str, ids: tuple[int, ...], entry: int, open_numbers: dict[int, int]) -> int:
        """Chain the fixed segment ``k``; its first token also closes every complete number of field k-1."""
        after_first = self._new_node()
        if k == 0:
            self.transitions[entry][ids[0]] = after_first
        for node, value in open_numbers.items():
            if ids[0] in self.transitions[node]:
                raise GrammarError(
                    f"token {ids[0]} both continues field {ACTION_FIELDS[k - 1]!r} (after {value}) and starts the "
                    f"fixed text {text!r}: the end of the number would be ambiguous"
                )
            self.transitions[node][ids[0]] = after_first
            self.ends[(node, ids[0])] = (k - 1, value)
        node = after_first
        for token in ids[1:]:
            nxt = self._new_node()
            self.transitions[node][token] = nxt
            node = nxt
        return node

    def _add_field(self, tokenizer, k: int, root: int) -> dict[int, int]:
        low, high = self.limits.field_range(k)
        values = list(range(low, high + 1))
        ids_per_value = _encode_pieces(tokenizer, [f" {v}" for v in values])
        complete: dict[int, int] = {}
        for value, ids in zip(values, ids_per_value, strict=True):
            node = root
            for token in ids:
                nxt = self.transitions[node].get(token)
                if nxt is None:
                    nxt = self._new_node()
                    self.transitions[node][token] = nxt
                node = nxt
            if node in complete:
                raise GrammarError(f"field {ACTION_FIELDS[k]!r}: {complete[node]} and {value} share token ids {ids}")
            complete[node] = value
        self.value_ids.append(dict(zip(values, ids_per_value, strict=True)))
        return complete

    def _check_template(self, tokenizer) -> None:
        bounded = [
            min(max(v, self.limits.field_range(i)[0]), self.limits.field_range(i)[1])
            for i, v in enumerate((-47, 19, 66, 14, 10, 15, 0))
        ]
        example = DeltaAction(*bounded)
        self.walk(self.token_ids(example))
        text = tokenizer.decode(list(self.token_ids(example)), skip_special_tokens=False)
        if text != format_action(example):
            raise GrammarError(f"grammar pieces decode to {text!r}, expected {format_action(example)!r}")

    # -- walking ---------------------------------------------------------------------------------

    def is_decision(self, node: int) -> bool:
        """True where the model chooses (two or more ways out); False where the next token is forced."""
        return len(self.transitions[node]) > 1

    def forced_path(self, node: int) -> tuple[list[int], int]:
        """Tokens forced from ``node`` up to the next decision (or the end), and the node reached."""
        tokens = []
        while node != self.final and len(self.transitions[node]) == 1:
            (token, node) = next(iter(self.transitions[node].items()))
            tokens.append(token)
        return tokens, node

    def allowed(self, node: int) -> tuple[int, ...]:
        """Token ids the model may choose at a node, in a fixed (ascending) order."""
        cached = self._allowed.get(node)
        if cached is None:
            cached = self._allowed[node] = tuple(sorted(self.transitions[node]))
        return cached

    def action_of(self, token_ids: tuple[int, ...] | list[int]) -> DeltaAction:
        """The action spelled by a whole token sequence of this grammar."""
        values = [0] * len(ACTION_FIELDS)
        node = self.start
        for token in token_ids:
            end = self.ends.get((node, token))
            if end is not None:
                values[end[0]] = end[1]
            node = self.step(node, token)
        if node != self.final:
            raise GrammarError("token ids stop before the end of the action template")
        return DeltaAction(*values)

    def step(self, node: int, token: int) -> int:
        """The node after ``token``; a token the grammar does not allow there is a bug, not bad input."""
        try:
            return self.transitions[node][token]
        except KeyError:
            raise GrammarError(f"token {token} is not allowed at grammar node {node}") from None

    def token_ids(self, action: DeltaAction) -> tuple[int, ...]:
        """The canonical token ids of ``action``; a value outside the limits raises naming the field."""
        ids: list[int] = []
        for k, value in enumerate(action.as_tuple()):
            low, high = self.limits.field_range(k)
            if not low <= value <= high:
                raise ValueError(
                    f"action field {ACTION_FIELDS[k]} = {value} is outside the actor's range [{low}, {high}]"
                )
            ids += self.segment_ids[k]
            ids += self.value_ids[k][value]
        ids += self.segment_ids[-1]
        return tuple(ids)

    def walk(self, token_ids: tuple[int, ...] | list[int]) -> list[tuple[int, int]]:
        """(position, node) of every decision along ``token_ids``, checking they spell one whole action."""
        decisions = []
        node = self.start
        for position, token in enumerate(token_ids):
            if self.is_decision(node):
                decisions.append((position, node))
            node = self.step(node, token)
        if node != self.final:
            raise GrammarError("token ids stop before the end of the action template")
        return decisions

    def field_of(self, node: int) -> int:
        """The field (index into ``ACTION_FIELDS``) whose number is being chosen at decision ``node``.

        Every decision lies inside one field's trie: its digits, and the decision that ends the number (the
        first token of the fixed text after it), which decides the number's value. Fixed text belongs to no
        field; asking for it is a bug."""
        field = self._node_field[node]
        if field < 0:
            raise GrammarError(f"grammar node {node} lies in the fixed text, not in a field")
        return field

    def decision_fields(self, token_ids: tuple[int, ...] | list[int]) -> tuple[int, ...]:
        """The field (index into ``ACTION_FIELDS``) each decision along ``token_ids`` chooses, in ``walk``'s order.

        Why: PPO pushes every decision of an action by one advantage; which field a decision belongs to says
        which part of the motion it moves (and which temperature samples it, ``PolicySettings``)."""
        return tuple(self.field_of(node) for _, node in self.walk(token_ids))
