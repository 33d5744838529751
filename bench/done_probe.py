"""Do the critic's frames tell a success from a near miss? A pixel probe of the done's boundary.

pick_bowl succeeds with the bowl resting, upright and released within 35 mm of the plate's centre
(``pick_bowl.SUCCESS_RADIUS_M``). The fine-tuned 64 px critics' done probability falls over 20-60 mm of that
distance instead of stepping at 35 mm, with or without placements labelled on both sides of the step, and at 64 px
a bowl 30 mm off and one 40 mm off differ by under a pixel (docs/rl_experiments.md, "Where the critic's done goes
wrong"). Is that softness in the pixels (the frame size the critic reads cannot hold the boundary, so no training
can sharpen it) or in the critic (the pixels hold it and the fine-tune does not learn it)? This script measures what
the pixels hold, at the critic's size and larger, with the same readout at every size.

Data: rollout folders with per-frame truth and the moved object's track (``critic_rollouts collect``; the
``off_centre`` variant sets the bowl down 15-65 mm off centre), recorded at the largest size probed. Frames kept:
the bowl not held (truth phase ``done``, ``placed`` or ``reach``) and within ``--max-mm`` of the plate's centre
(``critic_rollouts.goal_offsets_mm``); label: the truth's success (phase ``done``). Frames are split by scene
(seed), 30 % of scenes held out by a hash of the scene's name (``actor_probe.held_out_mask``).

Views (``--views``), each read by up to three small convolutional nets trained from scratch on the fit frames, the same
epochs at every size, once per ``--seeds``: ``label``, the success label itself (``actor_probe.fit_cnn``,
class-balanced BCE); ``offset``, the bowl's offset (x, y mm) from the plate's centre (``actor_probe.regress_cnn``),
scored by minus the predicted distance; ``label_aux``, the label read by a net trained on both at once
(``fit_label_with_offset``: a done head with an auxiliary offset loss, in miniature). The offset's supervision says
how far on every frame, where the label only says which side; when the two disagree, the label readout was short of
data, not the pixels of information. ``--readouts`` picks some.

- ``<N>px``: the recorded frame resized to N x N as the critic resizes it (``processor.squash_resize``, LANCZOS);
- ``crop<N>px``: the box ``--crop`` (fractions of the frame: left top right bottom, the table's part where the
  bowl and the plate lie) cut out first, then resized to N x N: the critic's size spent on the workspace.

Scored on the held-out frames: the rank AUC of success against not, over every kept frame and over the frames
``--band`` mm from the centre (the boundary's neighbourhood, where the critics' done is soft; on the fit frames too,
to tell a readout short of data from one short of information), the offset readout's RMSE of the distance in the
band, and per distance bin (``critic_rollouts.GOAL_DISTANCE_EDGES_MM``) for success and other frames the label
readout's mean probability (the table "Where the critic's done goes wrong" gives for the critic) and the offset
readout's mean predicted distance.

Critics, on the same frames: ``--critic NAME=DIR`` scores a critic's own done probability on every kept frame (pass
folders it was not trained on); ``--critic-features NAME=DIR`` reads the offset (ridge) and the label (logistic)
linearly from its decoder's hidden state at the done prompt's last token, fitted and scored on the split above: what
a linear done head on that critic could know. Usage:

  MUJOCO_GL=egl python bench/done_probe.py FOLDER [FOLDER ...] [--views 64px 96px 128px crop64px]
      [--readouts label offset label_aux] [--crop 0.1 0.3 0.9 0.9] [--seeds 0 1] [--epochs 15]
      [--max-mm 80] [--band 20 50] [--threads 2] [--critic NAME=DIR ...] [--critic-features NAME=DIR ...]

Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # actor_probe.py, beside it
from actor_probe import auc, fit_cnn, fit_logistic, held_out_mask, regress_cnn, train_frame_net
from object_probe import ridge_readout

from vlac_core.model.processor import squash_resize
from vlac_trainer.offline.critic_rollouts import GOAL_DISTANCE_EDGES_MM, goal_offsets_mm

#: truth phases of a bowl that is not held (pick_bowl.truth): success, within the radius but not one, elsewhere
NOT_HELD_PHASES = ("done", "placed", "reach")
VIEW_PATTERN = re.compile(r"^(crop)?(\d+)px$")
READOUTS = ("label", "offset", "label_aux")
BATCH = 64


@dataclass
class DoneFrames:
    """The kept frames, one entry per frame in every array."""

    frames: np.ndarray  # (N, H, W, 3) uint8 as recorded
    success: np.ndarray  # (N,) 1 where the truth says the task is done
    offset_mm: np.ndarray  # (N, 2) the bowl's horizontal offset (x, y) from the plate's centre
    scenes: list[str]  # the frame's episode (task and seed): the unit of the fit / held-out split
    texts: list[str]  # the frame's task instruction (what a critic is asked about it)

    @property
    def distance_mm(self) -> np.ndarray:
        return np.hypot(self.offset_mm[:, 0], self.offset_mm[:, 1])


def done_frames(records: Sequence, offsets: Sequence, max_mm: float) -> DoneFrames:
    """Every frame of ``records`` whose bowl is not held and lies within ``max_mm`` of the goal's centre
    (``offsets``: ``goal_offsets_mm(records)``); a record without an object track is refused, naming it."""
    frames, success, offset, scenes, texts = [], [], [], [], []
    for record, record_mm in zip(records, offsets, strict=True):
        name = f"{record.task} {record.variant} seed {record.seed}"
        if record_mm is None:
            raise ValueError(f"{name}: no object track (meta object_mm) or a task without a goal: cannot place it")
        phases = record.meta["phase"]
        for k, (phase, xy_mm) in enumerate(zip(phases, record_mm, strict=True)):
            if phase in NOT_HELD_PHASES and np.hypot(*xy_mm) <= max_mm:
                frames.append(record.front_images[k])
                success.append(phase == "done")
                offset.append(xy_mm)
                scenes.append(f"{record.task}_s{record.seed}")
                texts.append(record.text)
    if not frames:
        raise ValueError(f"no frame with the object not held within {max_mm} mm of its goal in {len(records)} episodes")
    success_array, offset_array = np.asarray(success, dtype=np.int64), np.asarray(offset, dtype=float)
    return DoneFrames(np.stack(frames), success_array, offset_array, scenes, texts)


def parse_view(view: str, frame_px: int) -> tuple[bool, int]:
    """(cropped, size) of a view name; a size larger than the recorded frame is refused (it adds no pixels)."""
    match = VIEW_PATTERN.match(view)
    if match is None:
        raise ValueError(f"view {view!r}: expected <N>px or crop<N>px, e.g. 64px or crop64px")
    size_px = int(match.group(2))
    if not 8 <= size_px <= frame_px:
        raise ValueError(f"view {view!r}: {size_px} px is outside 8..{frame_px} px (the frames' recorded size)")
    return match.group(1) is not None, size_px


def crop_box_px(crop: Sequence[float], frame_px: int) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) of ``crop``'s fractions of a square frame; an empty box is refused."""
    left, top, right, bottom = (float(c) for c in crop)
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise ValueError(f"crop {list(crop)}: need 0 <= left < right <= 1 and 0 <= top < bottom <= 1 (frame fractions)")
    box = (round(left * frame_px), round(top * frame_px), round(right * frame_px), round(bottom * frame_px))
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        raise ValueError(f"crop {list(crop)}: {box[2] - box[0]} x {box[3] - box[1]} px of a {frame_px} px frame")
    return box


def view_tensor(frames: np.ndarray, size_px: int, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """(N, 3, size, size) float in [0, 1]: each frame cut to ``box`` (if given), then resized as the critic does."""
    out = np.empty((len(frames), size_px, size_px, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        if box is not None:
            frame = np.ascontiguousarray(frame[box[1] : box[3], box[0] : box[2]])
        out[i] = squash_resize(frame, size_px, f"frame {i}")
    return torch.as_tensor(out, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0


def by_distance(value: np.ndarray, success: np.ndarray, distance_mm: np.ndarray, edges=GOAL_DISTANCE_EDGES_MM) -> list:
    """Per distance bin and label: frames and the mean of ``value`` (a readout's probability of success, or its
    predicted distance) over them (the critic audit's table)."""
    rows = []
    for lo, hi in itertools.pairwise(edges):
        in_bin = (distance_mm >= lo) & (distance_mm < hi)
        for label, name in ((1, "success"), (0, "other")):
            chosen = in_bin & (success == label)
            if chosen.any():
                rows.append(
                    {"from_mm": lo, "to_mm": hi, "frames": name, "n": int(chosen.sum()), "mean": _r(value[chosen])}
                )
    return rows


def fit_label_with_offset(
    frames: torch.Tensor, success: np.ndarray, offset_mm: np.ndarray, fit: np.ndarray, *, epochs: int, seed: int
) -> np.ndarray:
    """The success logit of every row from one ``FrameNet`` with three outputs trained from scratch on the fit rows:
    the logit (class-balanced BCE, as ``fit_cnn``) and the offset (MSE on standardised targets, as ``regress_cnn``),
    the two losses summed. The done head of a critic trained with an auxiliary offset loss, in miniature."""
    label = torch.as_tensor(success, dtype=torch.float32)
    offset = torch.as_tensor(offset_mm, dtype=torch.float32)
    mean, std = offset[fit].mean(0), offset[fit].std(0).clamp(min=1e-6)
    pos_weight = (1 - label[fit]).sum() / label[fit].sum().clamp(min=1.0)

    def loss_of(out: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            out[:, 0], label[index], pos_weight=pos_weight
        ) + torch.nn.functional.mse_loss(out[:, 1:], (offset[index] - mean) / std)

    fit_rows = torch.as_tensor(np.flatnonzero(fit))
    net = train_frame_net(frames, fit_rows, 3, loss_of, epochs=epochs, seed=seed, batch=BATCH)
    with torch.no_grad():
        return torch.cat([net(part)[:, 0] for part in frames.split(256)]).numpy()


def probe_view(
    data: DoneFrames, fit: np.ndarray, view: str, crop, *, epochs: int, seeds: Sequence[int], band, readouts=READOUTS
) -> dict:
    """One view's readouts, each trained once per seed: AUCs (held out, overall and in the band; in the band on the
    fit frames), the offset's distance RMSE in the band, and the per-distance table."""
    unknown = sorted(set(readouts) - set(READOUTS))
    if unknown:
        raise ValueError(f"readouts {unknown}: not among {list(READOUTS)}")
    cropped, size_px = parse_view(view, data.frames.shape[1])
    box = crop_box_px(crop, data.frames.shape[1]) if cropped else None
    x = view_tensor(data.frames, size_px, box)
    held = ~fit
    band_rows = (data.distance_mm >= band[0]) & (data.distance_mm < band[1])
    runs = []
    for seed in seeds:
        started = time.monotonic()
        scored = {}  # readout -> (score: higher means success, the per-distance table's value)
        if "label" in readouts:
            logits = fit_cnn(x[torch.as_tensor(fit)], data.success[fit], epochs=epochs, seed=seed)(x)
            scored["label"] = (logits, 1.0 / (1.0 + np.exp(-logits)))
        if "offset" in readouts:
            predicted_mm = np.hypot(*regress_cnn(x, data.offset_mm, fit, epochs=epochs, seed=seed).T)
            scored["offset"] = (-predicted_mm, predicted_mm)
        if "label_aux" in readouts:
            logits = fit_label_with_offset(x, data.success, data.offset_mm, fit, epochs=epochs, seed=seed)
            scored["label_aux"] = (logits, 1.0 / (1.0 + np.exp(-logits)))
        run = {"seed": seed}
        for readout, (score, table) in scored.items():
            run[readout] = {
                "auc": auc(score[held], data.success[held]),
                "band_auc": auc(score[held & band_rows], data.success[held & band_rows]),
                "fit_band_auc": auc(score[fit & band_rows], data.success[fit & band_rows]),
                "by_distance": by_distance(table[held], data.success[held], data.distance_mm[held]),
            }
        if "offset" in scored:
            error = -scored["offset"][0][held & band_rows] - data.distance_mm[held & band_rows]
            run["offset"]["band_rmse_mm"] = round(float(np.sqrt(np.mean(error**2))), 2)
        run["fit_s"] = round(time.monotonic() - started, 1)
        runs.append(run)
    summary = {}
    for readout in scored:
        aucs = [r[readout]["band_auc"] for r in runs if r[readout]["band_auc"] is not None]
        summary[readout] = {
            "band_auc_mean": _r(aucs) if aucs else None,
            "band_auc_spread": _r(np.ptp(aucs)) if aucs else None,
        }
    return {"view": view, "size_px": size_px, "crop_box_px": list(box) if box else None, **summary, "runs": runs}


def probe_critic(data: DoneFrames, name: str, checkpoint: str, *, band, batch_size: int = 16) -> dict:
    """A critic's done probability on every kept frame (its ``done`` prompt, the frame resized as it resizes), scored
    as the readouts are but over all frames: pass folders the critic was not trained on. Unparsable answers (no done
    probability) are counted and left out."""
    from vlac_critic.backends import make_backend
    from vlac_critic.critic import Critic

    critic = Critic(make_backend("torch", checkpoint, device="cpu", dtype="fp32"), batch_size=batch_size)
    started = time.monotonic()
    prob = np.full(len(data.success), np.nan)
    for text in sorted(set(data.texts)):
        rows = np.flatnonzero(np.asarray(data.texts) == text)
        for row, score in zip(rows, critic.done(text, list(data.frames[rows])), strict=True):
            prob[row] = np.nan if score.done_prob is None else float(score.done_prob)
    parsed = ~np.isnan(prob)
    in_band = parsed & (data.distance_mm >= band[0]) & (data.distance_mm < band[1])
    return {
        "critic": name,
        "checkpoint": checkpoint,
        "unparsed": int((~parsed).sum()),
        "auc": auc(prob[parsed], data.success[parsed]),
        "band_auc": auc(prob[in_band], data.success[in_band]),
        "by_distance": by_distance(prob[parsed], data.success[parsed], data.distance_mm[parsed]),
        "score_s": round(time.monotonic() - started, 1),
    }


def critic_features(checkpoint: str, data: DoneFrames, batch: int = 32) -> np.ndarray:
    """(N, hidden) a critic's decoder hidden state at the last token of its done prompt, for each kept frame: what its
    done digit is read from, so what no done head on this critic can go beyond."""
    from vlac_core import prompts
    from vlac_core.model import encode, last_prompt_hidden, load_model

    loaded = load_model(checkpoint, device="cpu", dtype="fp32")
    loaded.model.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(data.texts), batch):
            part = slice(start, start + batch)
            contents = [prompts.done_prompt(text) for text in data.texts[part]]
            encoded = encode(loaded, contents, [[frame] for frame in data.frames[part]])
            rows.append(last_prompt_hidden(loaded, encoded).float().numpy())
    return np.concatenate(rows).astype(np.float64)


def probe_critic_features(data: DoneFrames, fit: np.ndarray, name: str, checkpoint: str, *, band) -> dict:
    """Linear readouts of a critic's done-prompt features, fitted on the fit scenes and scored on the held-out ones as
    the CNN readouts are: the offset (ridge, penalty chosen on an inner split; scored by minus the predicted
    distance) and the label (class-balanced logistic regression)."""
    started = time.monotonic()
    x = critic_features(checkpoint, data)
    held = ~fit
    band_rows = held & (data.distance_mm >= band[0]) & (data.distance_mm < band[1])
    offset, penalty = ridge_readout(x, data.offset_mm, data.scenes, fit)
    predicted_mm = np.hypot(offset[:, 0], offset[:, 1])
    logits = fit_logistic(x[fit], data.success[fit])(x)
    error = predicted_mm[band_rows] - data.distance_mm[band_rows]
    return {
        "critic": name,
        "checkpoint": checkpoint,
        "offset": {
            "auc": auc(-predicted_mm[held], data.success[held]),
            "band_auc": auc(-predicted_mm[band_rows], data.success[band_rows]),
            "band_rmse_mm": round(float(np.sqrt(np.mean(error**2))), 2),
            "ridge_penalty": penalty,
        },
        "label": {
            "auc": auc(logits[held], data.success[held]),
            "band_auc": auc(logits[band_rows], data.success[band_rows]),
        },
        "features_s": round(time.monotonic() - started, 1),
    }


def _named(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--critic {spec!r}: expected NAME=DIR")
    return name, path


def _r(value) -> float:
    return round(float(np.mean(value)), 4)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="rollout folders (critic_rollouts collect) with per-frame truth")
    parser.add_argument("--views", nargs="+", default=["64px", "96px", "128px", "crop64px"])
    parser.add_argument("--crop", nargs=4, type=float, default=[0.1, 0.3, 0.9, 0.9], metavar=("L", "T", "R", "B"))
    parser.add_argument("--readouts", nargs="*", default=list(READOUTS), choices=READOUTS, help="none: critics only")
    parser.add_argument(
        "--critic", action="append", default=[], metavar="NAME=DIR", help="also score this critic's done (repeatable)"
    )
    parser.add_argument(
        "--critic-features",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also read the offset and the label linearly from this critic's done-prompt features (repeatable)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="one readout trained per seed")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-mm", type=float, default=80.0, help="frames kept: the object within this of its goal")
    parser.add_argument("--band", nargs=2, type=float, default=[20.0, 50.0], help="the boundary's neighbourhood, mm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from vlac_trainer.offline.critic_rollouts import _records_with_truth

    records = _records_with_truth(args.folders, None)
    if not records:
        parser.error(f"no episode with per-frame ground truth in {args.folders}")
    data = done_frames(records, goal_offsets_mm(records), args.max_mm)
    fit = ~held_out_mask(data.scenes)
    result = {
        "folders": args.folders,
        "episodes": len(records),
        "frames": len(data.success),
        "success_share": _r(data.success),
        "held_out_frames": int((~fit).sum()),
        "band_mm": args.band,
        "epochs": args.epochs,
        "views": [
            probe_view(
                data, fit, view, args.crop, epochs=args.epochs, seeds=args.seeds, band=args.band, readouts=args.readouts
            )
            for view in (args.views if args.readouts else [])
        ],
        "critics": [probe_critic(data, *_named(spec), band=args.band) for spec in args.critic],
        "critic_features": [
            probe_critic_features(data, fit, *_named(spec), band=args.band) for spec in args.critic_features
        ],
    }
    print(f"{len(records)} episodes, {len(data.success)} frames ({result['held_out_frames']} held out)")
    print(f"{'view':>10} {'readout':>8} {'AUC held out':>16} {'AUC in band':>16} {'fit AUC in band':>16}")
    for view in result["views"]:
        for readout in args.readouts:
            cells = [
                " / ".join(str(r[readout][key]) for r in view["runs"]) for key in ("auc", "band_auc", "fit_band_auc")
            ]
            print(f"{view['view']:>10} {readout:>8} " + " ".join(f"{c:>16}" for c in cells))
    for readout in result["critic_features"]:
        offset, label = readout["offset"], readout["label"]
        print(
            f"features of {readout['critic']}: offset AUC {offset['auc']} ({offset['band_auc']} in the band, RMSE "
            f"{offset['band_rmse_mm']} mm), label AUC {label['auc']} ({label['band_auc']} in the band)"
        )
    for critic in result["critics"]:
        print(f"critic {critic['critic']}: AUC {critic['auc']} (every frame), {critic['band_auc']} in the band")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
