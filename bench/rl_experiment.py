"""The issue-7 experiment as one command: success rate against RL episodes, demo replay, 1/2/4 arms.

Variants (each one ``vlac session`` run per training seed, in its own folder, settings from
config/experiment_pick_bowl.yaml):
  a  1 arm, the critic's progress as the only reward, from the shipped actor prior
  b  as a, plus offline demonstration replay (scripted-expert demos collected here with collect-demos)
  c  as a with 2 arms          d  as a with 4 arms
  e  as a, with the critic's done confirmed over 3 steps at threshold 0.8 (what variant a's episodes showed)
  g  as a, with the simulator's ground truth as the reward (potential change) and done: the control that
     tells "PPO cannot climb" from "the critic's reward is not worth climbing"
  s  as g with the sparse ground truth (1 at success, else 0)
  g3, g4, gb, gk, gd, gdb  the PPO step-size scan on g: larger steps (lr 3e-5, 4 epochs, target KL 0.03),
     lr 1e-4, 16 episodes per update, a KL anchor to the prior, the ratio per sampled decision, and the last
     with 16 episodes per update (trainer_node keys); g8: g with 8 episodes per update
  gdf  as gdb, failed episodes returned to where their return peaked (episode_manager.return_to: frontier)
  gdh  as gdf, and the scripted operator finishes episodes that stall 10 steps (human-guided explore)
  gdr  as gdf, and the operator steps in only over the plate (3 steps held there without progress)
  gdrn as gdr with the operator's demo NLL weighted 1.0 (0.1 elsewhere)
  cdf  as gdf with the critic's reward and done: the headline with the control's settings
After each run's session, ``vlac critic audit`` scores the critic against ground truth on its training
episodes (<variant>/seed<k>/critic_audit/: JSON and PNG), whatever the reward source was. Once a run is
finished, its final policy is scored greedily on ``--final-trials`` held-out scenes (default 40, from the
session's eval_seed: the first 10 are its evaluations' scenes) with ``vlac actor eval``, ended by ground truth
(<variant>/seed<k>/final_check/): the table's "final policy" column and the stars of the success plot.
With ``--scene-control R`` the run's prior is then sampled R times on each of the run's training scenes
(<variant>/seed<k>/scene_control/, ``rl_report.SCENE_CONTROL``): the table says by how much the run's training
successes differ from the prior's expected ones on the very same scenes, with that difference's spread were the
run's policy the prior, and the training plot draws the prior's expected curve beside the run's (dotted).

Training seeds (``--seeds``, default 0): one curve is one draw; a variant's result is its mean over seeds
with the spread (min-max). Seed k sets everything that shapes training: the training scenes
(``episode_manager.scene_seed``, the one the session reads, and ``sim_node.seed`` to match, both
k x SCENES_PER_SEED so two seeds never share a scene), the actor's sampling (``actor_node.seed`` = k) and
the trainer's minibatch order (``trainer_node.seed`` = k). ``session.eval_seed`` stays: every seed is
evaluated on the same held-out scenes, so the curves compare. Runs go variant by variant, seed by seed.
The variants of one seed share the actor's sampling stream: until its first update every variant of seed k
draws the very same episodes (common random numbers, by choice: what differs between two variants of a seed is
their updates' doing), so two variants' runs of a seed are not independent samples; seeds are.

Two success series per variant: the greedy evaluations (``--eval-trials`` trials each: 10 trials are
+-15 points of noise) and the training episodes' own ground-truth success (the row's ``success``: the
simulator's verdict at the episode's end, whatever ended it; aborted episodes have none): the sampled
policy on the training scenes, as a rolling rate over the last TRAIN_WINDOW training episodes, averaged
over seeds; the table quotes each seed's last TRAIN_TAIL. Variant b's demos are shared by its seeds.

``--episodes`` is the number of RL training episodes of a run over all its arms (the session's own
meaning), so every variant gets the same amount of robot data; episodes per arm = episodes / arms.

Why a subprocess per run: a session owns its process (torch threads, GL contexts, Ctrl-C handling)
and the command is exactly what a user would run. Why resumable: a full run takes hours on 2 CPU
cores; re-running the same command skips finished runs and continues interrupted ones (the
session resumes from its trainer checkpoint and runs only the episodes still missing). A session that
crashes (killed by SIGSEGV, SIGBUS or SIGABRT) is resumed that way at once, up to --crash-resumes times;
every exit stays in experiment_runs.jsonl and the report counts the crashes. Sessions run with
PYTHONFAULTHANDLER=1, so a crash leaves every thread's stack in session.log.
Settings of a started run may not change except its size (--episodes) and --threads: a changed
setting (its seed included) is an error, not a silently mixed curve, and so is a variant folder
holding a session itself (a run from before --seeds).

The figures (statistics over seeds, plots, the table) are bench/rl_report.py's; this file runs.

Outputs: <out>/<variant>/seed<k>/ (the session's folder + experiment_config.yaml, session.log with
elapsed seconds per line, experiment_runs.jsonl with one line per invocation),
<docs>/rl_success_vs_episodes.png (per variant: mean over seeds, min-max band, thin per-seed lines),
<docs>/rl_train_success.png (the training episodes' ground-truth success, the same way),
<docs>/rl_episodes_to_80.png (one bar per seed), <docs>/rl_false_done.png (training episodes the critic
ended as done though they failed, from the first variant's first seed: one folder's bags), a Markdown
table, and as the last line one JSON object (per variant: aggregates over seeds and each seed's figures).
The report covers the seeds given on the command line.

Usage: MUJOCO_GL=egl .venv/bin/python bench/rl_experiment.py [--variants a b c d] [--seeds 0 1]
       [--episodes 200] [--eval-every 20] [--eval-trials 10] [--final-trials 40] [--scene-control 4]
       [--out out/rl_experiment]
       [--docs docs] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vlac.episode.arm_wiring import SCENES_PER_ARM, arm_seeds
from vlac.param_file import merge_sections, read_session_sections, resolve_paths
from vlac_actor.policy_settings import TEMPERATURE_RANGE, read_policy_settings, write_policy_settings
from vlac_core.types import ACTION_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its figures' module, rl_report.py, beside it
from rl_report import (
    FINAL_CHECK,
    POOL_CHECK,
    SCENE_CONTROL,
    THRESHOLD,
    TRAIN_WINDOW,
    aggregate,
    collect_run,
    crash_signal,
    final_policy_dir,
    finished_training,
    is_finished,
    plot_curves,
    plot_false_done,
    plot_to_threshold,
    plot_train_success,
    prior_outcomes,
    read_eval,
    read_final_check,
    read_jsonl,
    read_scene_control,
    run_dir,
    run_name,
    scene_control_evaluations,
    scene_of,
    table,
    verdict_rows,
)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path("config/experiment_pick_bowl.yaml")
#: (section, key) a resumed variant may change: the run's size, its CPU threads, the trainer's diagnostics (the
#: lessons, the drift from the prior: each leaves every update as it was) and the policies kept on disk, nothing
#: that shapes learning.
MAY_CHANGE = {
    ("session", "episodes"),
    ("session", "torch_threads"),
    ("trainer_node", "lesson_agreement"),
    ("trainer_node", "log_prior_kl"),
    ("trainer_node", "keep_policy_every"),
}
#: Scene seeds reserved per training seed: seed k's arms start at k * SCENES_PER_SEED (+ SCENES_PER_ARM per arm).
#: Why not k itself: seed 1 would train on seed 0's scenes shifted by one episode (199 of 200 shared).
SCENES_PER_SEED = 1000
#: Seeds below this keep clear of arm 1's scenes (SCENES_PER_ARM on), whatever the arm count.
SEED_LIMIT = SCENES_PER_ARM // SCENES_PER_SEED
#: The scene control's first sampling seed (its n-th evaluation of a run draws with this + n): no run's actor draws
#: with these (a run's actor seed is its training seed, below SEED_LIMIT), so the control's draws are independent of
#: the run's own on the same scenes.
SCENE_CONTROL_SAMPLE_SEED = 1_000_003


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    arms: int
    demos: bool
    # The variant's overlay of the template, {section: {key: value}}: merged over it by the rule of a session
    # file's `extends` (vlac.param_file.merge_sections), so a variant is a short overlay like a session file.
    overlay: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


#: The template's arm sections, as config/session_base.yaml spells them (every arm's node).
SIM, MANAGER = "/**/sim_node", "/**/episode_manager"
_GT_DENSE = {MANAGER: {"reward_source": "sim_dense"}}
_BIGGER_STEPS = {"learning_rate": 3.0e-5, "update_epochs": 4, "target_kl": 0.03}
#: gdb's trainer (a per-decision ratio, 16 episodes per update): the control's settings from gdb on.
_GDB_TRAINER = {**_BIGGER_STEPS, "ppo_ratio": "decision", "episodes_per_update": 16}
#: gdf: the ground-truth control with return-and-explore to the frontier; gdh and gdr add an operator to it.
_GDF = {MANAGER: {**_GT_DENSE[MANAGER], "return_to": "frontier"}, "trainer_node": _GDB_TRAINER}
#: gdr's operator: steps in only when the bowl has been held over the plate for 3 steps without progress.
_RELEASE_OPERATOR = {"guided_explore_stall_steps": 3, "guided_explore_stall_phases": ["release"]}
#: gg's settings: each fresh scene 4 times (one batch), the leave-one-out group advantage, no value head.
_GG = {
    MANAGER: {**_GT_DENSE[MANAGER], "scene_repeats": 4, "return_explore": False},
    "trainer_node": {"advantage": "group", "norm_adv": False, "vf_coef": 0.0, "value_warmup_updates": 0},
}

VARIANTS = {
    "a": Variant("a", "1 arm, critic reward", 1, False),
    "b": Variant("b", "1 arm, critic reward + demo replay", 1, True),
    "c": Variant("c", "2 arms, critic reward", 2, False),
    "d": Variant("d", "4 arms, critic reward", 4, False),
    # Why e: in a first run of a, true completions held the done probability at 0.8-0.89 (under 0.9) while
    # every false done was a one-frame spike; e asks for 3 steps in a row over 0.8 instead.
    "e": Variant(
        "e",
        "1 arm, critic reward, done: 3 steps > 0.8",
        1,
        False,
        {MANAGER: {"done_threshold": 0.8, "done_confirm_steps": 3}},
    ),
    # Why ec: the rule that suits a critic differs by critic (at 1 step over 0.9 the fine-tuned one was silent on 25
    # of 63 successes on one seed's scenes and ended 11 of 40 episodes falsely on the other's); ec runs with the
    # rule chosen for the critic on rollouts with ground truth (critic_rollouts done-rule --write).
    "ec": Variant(
        "ec",
        "1 arm, critic reward, done: the critic's own rule (done_rule.json)",
        1,
        False,
        {MANAGER: {"done_rule": "critic"}},
    ),
    "g": Variant("g", "1 arm, ground-truth dense reward (control)", 1, False, _GT_DENSE),
    "s": Variant(
        "s", "1 arm, ground-truth sparse reward (control)", 1, False, {MANAGER: {"reward_source": "sim_sparse"}}
    ),
    # The PPO step-size scan on the ground-truth control (issue 11): g's updates were correct but tiny (KL 0.005).
    "g3": Variant(
        "g3", "as g, lr 3e-5, 4 epochs, target KL 0.03", 1, False, {**_GT_DENSE, "trainer_node": _BIGGER_STEPS}
    ),
    "g4": Variant(
        "g4", "as g3 with lr 1e-4", 1, False, {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "learning_rate": 1.0e-4}}
    ),
    "gb": Variant(
        "gb",
        "as g3, 16 episodes per update",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "episodes_per_update": 16}},
    ),
    "gk": Variant(
        "gk",
        "as g3 + KL anchor to the prior (1.0)",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "prior_kl_coef": 1.0}},
    ),
    # Why gd: in g3-gk 39-64 % of actions were clipped (a per-action ratio is the product of ~20 decisions').
    "gd": Variant(
        "gd",
        "as g3, ratio per sampled decision",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {**_BIGGER_STEPS, "ppo_ratio": "decision"}},
    ),
    # Why gdb: gd's seed 0 climbed for 60 episodes and fell back; 4-episode batches are the suspect noise.
    "gdb": Variant(
        "gdb",
        "as gd, 16 episodes per update",
        1,
        False,
        {**_GT_DENSE, "trainer_node": _GDB_TRAINER},
    ),
    # Why gdf: gdb's policy learned to hold the bowl over the plate and opened there on 0.6-1.4 % of those steps;
    # returning to where failed episodes got furthest puts it there on every step of a revisit.
    "gdf": Variant(
        "gdf",
        "as gdb, return-and-explore to the frontier",
        1,
        False,
        _GDF,
    ),
    # Why gdh: the bags of gdb/gdf show PPO lowering the open decision everywhere (drops in carry outweigh the
    # rare releases 4:1, rl_report.open_decision_push); an operator who finishes stalled episodes shows the
    # release on the very states the policy stalls in (demo NLL), and the policy's steps before stay PPO data.
    "gdh": Variant(
        "gdh",
        "as gdf + the scripted operator takes over after 10 steps without progress",
        1,
        False,
        {**_GDF, "session": {"guided_explore_stall_steps": 10}},
    ),
    # Why gdr: gdh's operator stepped in mostly mid-carry and its NLL there broke the carry (as DAgger did); the
    # open decision's push says the release alone is what PPO cannot raise. This operator steps in only when
    # the bowl has been held over the plate for 3 steps without progress, and shows the release there.
    "gdr": Variant(
        "gdr",
        "as gdf + the scripted operator releases a bowl held over the plate for 3 steps",
        1,
        False,
        {**_GDF, "session": _RELEASE_OPERATOR},
    ),
    # Why gdrn: in gdr the policy's own opens over the plate fell to 0 though the operator showed the release
    # there 55-62 times; bench/actor_probe.py finds "over the plate" in the actor's features (held-out AUC
    # 0.78-0.90) but not in its open decision (0.48-0.59): the NLL on the operator's releases (0.1) lost to PPO.
    "gdrn": Variant(
        "gdrn",
        "as gdr with the operator's demo NLL weighted 1.0 (gdr: 0.1)",
        1,
        False,
        {
            **_GDF,
            "trainer_node": {**_GDB_TRAINER, "demo_coef": 1.0},
            "session": _RELEASE_OPERATOR,
        },
    ),
    # Why cdf: the headline with the control's settings, the reward the only difference (the critic's
    # progress and done; the frontier is where the critic's return peaked).
    "cdf": Variant(
        "cdf",
        "as gdf with the critic's reward (the headline)",
        1,
        False,
        {
            MANAGER: {"return_to": "frontier"},
            "trainer_node": _GDB_TRAINER,
        },
    ),
    # Why gi: in rl19 the control (g) climbed to 40-60 % and fell back; PPO sees each success once, in one update.
    # Self-imitation replays the policy's recent successes (the reward source's done) as an NLL beside PPO.
    "gi": Variant(
        "gi",
        "as g + self-imitation of its own successes (NLL 1.0)",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {"self_imitation_coef": 1.0}},
    ),
    "gi5": Variant(
        "gi5",
        "as g + self-imitation of its own successes (NLL 5.0)",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {"self_imitation_coef": 5.0}},
    ),
    # Why g8: at logit temperature 0.3 the control's greedy success rose within 20-40 episodes and stayed flat,
    # and every larger step (g3, gd, gdb at T 0.3) did worse; g's step with twice the episodes per update tests
    # whether the noise of 4-episode batches is what stops the climb.
    "g8": Variant(
        "g8",
        "as g, 8 episodes per update",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {"episodes_per_update": 8}},
    ),
    # Why gp: with backpressure every batch is one version old, and clipped around the version that sampled it
    # 30 % of the 96 px actor's actions start outside the clip range (rl28); decoupled PPO clips around the
    # policy before the update and weights each action by a truncated pi_old / mu instead.
    "gp": Variant(
        "gp",
        "as g, clipped around the pre-update policy (decoupled PPO)",
        1,
        False,
        {**_GT_DENSE, "trainer_node": {"ppo_clip_around": "pre_update"}},
    ),
    # Why gg: every change of the optimiser (gp, g8, gd, gk, ...) ended at or below the prior, and V(s) explains
    # 10-43 % of the returns' variance: most of a GAE advantage is how hard the scene was. gg runs each fresh scene
    # 4 times (one batch) and gives every step its episode's return minus the other three's mean (RLOO): a group
    # that all succeeds has zero advantages, and what differs within a group is the policy's doing. No value head.
    "gg": Variant("gg", "as g, 4 episodes per scene, leave-one-out group advantage (no value)", 1, False, _GG),
    # gg with every episode weighing alike (the length bias rl30 found: failures run to the limit, successes end early).
    "gge": Variant(
        "gge",
        "as gg, each episode's steps weighted by mean length / its length (a group's push sums to zero)",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "group_weighting": "episode"}},
    ),
    # Why ggn: in gg and gge the policy loss's gradient norm was 14-16 (median, first minibatch) against
    # max_grad_norm 0.5, so every gradient reached Adam clipped to one norm: a batch with a faint or noisy
    # difference stepped as far as one with a clear one. A clip at 50 catches outliers only, so a step's length
    # follows the strength of the group's difference (the signature: KL per update tracking |advantage|).
    "ggn": Variant(
        "ggn",
        "as gg, gradient clip at norm 50 (outliers only) instead of 0.5",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "max_grad_norm": 50.0}},
    ),
    # Why gg8: ggn let a step follow one scene's four-episode difference and did worse, so the suspect was the
    # signal's sample size: two scenes' groups per update, at gg's clip. rl33: 20 and 18 of 40, below gg.
    "gg8": Variant(
        "gg8",
        "as gg, 8 episodes per update (two scenes' groups of 4)",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "episodes_per_update": 8}},
    ),
    # Why ggz: an update whose groups all did alike has a zero gradient, yet Adam stepped on it along its momentum
    # (rl32 seed 0, update 18: KL 0.127 with no signal). ggz takes no step on a zero gradient. rl37 (2 seeds, 120
    # episodes): held-out 10 and 8 of 20 (prior 12), training success down from 65 % to 48 % and 45 % of the last 40.
    "ggz": Variant(
        "ggz",
        "as gg, no optimiser step on a zero gradient (a batch whose groups all did alike)",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "skip_zero_gradient_steps": True}},
    ),
    # Why ggr8 (the noise of one scene's lesson): gg climbs nothing on fresh scenes, gg1 climbs its one scene, and a
    # pool of 5 (six groups per scene) climbs neither its pool nor held-out. If four episodes are too few to tell a
    # scene's better actions from luck, a group of eight from one scene, one update each, halves that noise at the
    # same episodes per update as gg8 (which mixed two scenes' groups of four instead). rl38 (2 seeds, 120 episodes):
    # 19 and 27 of 40 held-out scenes (prior 27): it holds the prior at best.
    "ggr8": Variant(
        "ggr8",
        "as gg, 8 episodes per scene, one scene's group per update",
        1,
        False,
        {
            MANAGER: {**_GG[MANAGER], "scene_repeats": 8},
            "trainer_node": {**_GG["trainer_node"], "episodes_per_update": 8},
        },
    ),
    # Why ggs (smaller steps over more scenes): every group-baseline run on fresh scenes moved the policy by a median
    # KL of 0.03-0.05 per update, one scene's four or eight episodes at a time, and its training success rose and
    # fell back. A quarter of the learning rate lets no one scene move the policy far, so what the update keeps is
    # what many scenes agree on; run on 200 episodes (50 scenes), the budget. rl39 (2 seeds): KL per update
    # 0.003-0.004, held-out 21 and 24 of 40 (prior 27); training success within the prior's on the same scenes.
    "ggs": Variant(
        "ggs",
        "as gg, a quarter of the learning rate (2.5e-6)",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "learning_rate": 2.5e-6}},
    ),
    # Why ggk (the drift's cost): gg on fresh scenes to 400 episodes (rl41) fell below the prior on the same scenes
    # after episode 120 although its groups' lessons agreed at the prior (gradient_agreement): the noise of each
    # update is not neutral, a random walk away from a prior fitted to the expert costs success. A KL anchor to the
    # prior is a restoring force: it bounds the walk (its spread stops growing) while a lesson the groups share holds
    # a standing offset, so if drift is the cost, ggk's training success stays at or above the prior's on the same
    # scenes where gg's fell. rl42 (2 seeds, 200 episodes): the drift held (3.9 and 1.7 % of actions moved over a
    # nat) and training success at the prior's (+7.0 and +8.0, null sd 8.9, 9.4), greedy 10 and 12 of 20 (prior 12);
    # the on-policy lessons do not agree (0.005, 0.003): nothing to climb.
    "ggk": Variant(
        "ggk",
        "as gg + KL anchor to the prior (1.0)",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "prior_kl_coef": 1.0}},
    ),
    # Why gg1 (the overfit check): every change of the update ended at or below the prior on fresh scenes, which
    # mixes two questions: does an update climb at all, and does what it learns carry to new scenes. gg1 trains
    # on one scene throughout (the seed's first; every batch a group of 4 from it), so its training success is the
    # first question alone. rl34 (4 seeds, 120 episodes): it climbs (greedy success on its scene on all four).
    "gg1": Variant(
        "gg1",
        "as gg, every training episode on the seed's first scene (the overfit check)",
        1,
        False,
        {**_GG, MANAGER: {**_GG[MANAGER], "scene_repeats": SCENES_PER_SEED}},
    ),
    # Why ggp<K> (the step from one scene to the task): gg1 climbed on its one scene and carried nothing to new
    # ones; gg (a new scene per group) did not climb. A pool of K training scenes, cycled, sits between: each
    # scene comes back every K groups, and held-out success against K says where learning stops carrying over.
    # rl35 (ggp5, 2 seeds, 120 episodes): greedy on the pool 4 -> 4 and 2 -> 2 of 5, held-out 10 and 5 of 20 (prior
    # 12): six interleaved groups per scene did not climb the pool. rl40 (ggp10, same): greedy on the pool 9 -> 6 and
    # 6 -> 2 of 10, held-out 10 and 5 of 20, training success +4.5 and -3.0 of 120 against the prior sampled on the
    # same scenes (null sd 7.6, 7.1). ggp25 not run.
    **{
        f"ggp{k}": Variant(
            f"ggp{k}",
            f"as gg, training scenes a pool of {k} cycled (each scene's group every {k} updates)",
            1,
            False,
            {**_GG, MANAGER: {**_GG[MANAGER], "scene_pool": k}},
        )
        for k in (5, 10, 25)
    },
    # Why ggph (credit per task phase): gg hands every step its episode's whole advantage, so an episode that grasped
    # and hovered beside two that never grasped is told "more of this" for its hovering too, and each lesson mixes
    # the few steps that decided the episode with the 30-60 that did not; the scenes' lessons agreed little at the
    # prior and not at all on-policy (rl41-rl43). ggph keeps the group baseline and judges each run of steps in one
    # simulator phase (reach, carry, release, ...) by its return to go against the group's others from where they
    # reached that phase (group_baseline.phase_matched_advantages).
    "ggph": Variant(
        "ggph",
        "as gg, the group baseline per task phase (advantage group_phase)",
        1,
        False,
        {**_GG, "trainer_node": {**_GG["trainer_node"], "advantage": "group_phase"}},
    ),
    # The headline with self-imitation: the critic's done picks the episodes to imitate (never the ground truth).
    "ai": Variant(
        "ai",
        "as a + self-imitation of what the critic calls done (NLL 1.0)",
        1,
        False,
        {"trainer_node": {"self_imitation_coef": 1.0}},
    ),
}


class ExperimentError(RuntimeError):
    """The experiment cannot go on as asked; the message says what to change."""


# -- configuration ---------------------------------------------------------------------------------


def training_scene_seed(seed: int) -> int:
    """First training scene of training seed ``seed`` (arm 0; the session adds SCENES_PER_ARM per arm)."""
    return seed * SCENES_PER_SEED


def set_training_seed(config: dict, seed: int) -> None:
    """Point every seed that shapes training at ``seed``; ``session.eval_seed`` stays (same held-out scenes).

    ``episode_manager.scene_seed`` is what the session's training arms start from; ``sim_node.seed`` (the
    ROS sim node's) is set alike so the file does not say two things.
    """
    scenes = training_scene_seed(seed)
    config[SIM]["ros__parameters"]["seed"] = scenes
    config[MANAGER]["ros__parameters"]["scene_seed"] = scenes
    config["actor_node"]["ros__parameters"]["seed"] = seed
    config["trainer_node"]["ros__parameters"]["seed"] = seed


def check_seed_scenes(seeds: list[int], episodes: int) -> None:
    """Refuse seeds whose training scenes would overlap: a run draws up to ``episodes`` scenes per arm."""
    if len(seeds) > 1 and episodes > SCENES_PER_SEED:
        raise ExperimentError(
            f"{episodes} episodes per run would reach the next seed's scenes ({SCENES_PER_SEED} apart); "
            "run fewer episodes or one seed"
        )


def load_template() -> dict:
    """The template with its ``extends`` chain applied, as a parameter file's sections (what each run writes)."""
    return {name: {"ros__parameters": params} for name, params in read_session_sections(ROOT / TEMPLATE).items()}


def variant_config(template: dict, variant: Variant, args, out: Path, demo_dir: Path | None, seed: int = 0) -> dict:
    """The template with the variant's overlay, the training seed's and the run's keys set (a deep copy)."""
    sections = merge_sections({name: s["ros__parameters"] for name, s in template.items()}, variant.overlay)
    config = json.loads(json.dumps({name: {"ros__parameters": params} for name, params in sections.items()}))
    set_training_seed(config, seed)
    session = config["session"]["ros__parameters"]
    rdir = run_dir(out, variant.name, seed)
    session.update(arms=variant.arms, out_dir=str(rdir), demo_dir=str(demo_dir) if demo_dir else "")
    if getattr(args, "prior", None):  # the actor starts from it, and the trainer scores and anchors to it
        for node in ("actor_node", "trainer_node"):
            config[node]["ros__parameters"]["checkpoint_path"] = str(args.prior)
        # The arms render at the size the prior was trained on (the critic resizes to its own): a frame of
        # another size would reach the actor resized silently, off its training data.
        trained_px = read_policy_settings(ROOT / args.prior).image_size_px
        if trained_px:
            config[SIM]["ros__parameters"]["image_size_px"] = trained_px
    if getattr(args, "critic", None):  # rewards and dones (critic variants), and the audit of every variant
        config["critic_node"]["ros__parameters"]["checkpoint"] = str(args.critic)
    if getattr(args, "lesson_agreement", False):
        config["trainer_node"]["ros__parameters"]["lesson_agreement"] = True
    if getattr(args, "log_prior_kl", False):
        config["trainer_node"]["ros__parameters"]["log_prior_kl"] = True
    if getattr(args, "keep_policy_every", 0):
        config["trainer_node"]["ros__parameters"]["keep_policy_every"] = args.keep_policy_every
    if getattr(args, "kl_guard", 0):  # shapes the updates: a resume under another guard is refused
        config["trainer_node"]["ros__parameters"]["kl_guard"] = args.kl_guard
    for key, value in (
        ("episodes", args.episodes),
        ("eval_every_episodes", args.eval_every),
        ("eval_trials", args.eval_trials),
        ("torch_threads", args.threads),
        ("max_demos", args.demos if demo_dir else None),
    ):
        if value is not None:
            session[key] = value
    return config


def absolute_paths(config: dict) -> dict:
    """``config`` with its relative paths made absolute against the repository (the sessions run there):
    the variant's file lives in its own folder, and a session file's paths resolve against its root."""
    absolute = {}
    for name, section in config.items():
        params = section["ros__parameters"]
        absolute[name] = {"ros__parameters": {**params, **resolve_paths(name.rsplit("/", 1)[-1], params, ROOT)}}
    return absolute


#: Keys that moved to another section since runs were started, (old section, key) -> new section: a started
#: run's experiment_config.yaml is read with them in their new place (the session refuses the old one).
MOVED = {("session", "max_waiting_batches"): MANAGER}


def moved_into_place(config: dict) -> dict:
    """``config`` (a started run's) with the keys of ``MOVED`` in their new sections; the rest as it was."""
    out = {name: {"ros__parameters": dict(section["ros__parameters"])} for name, section in config.items()}
    for (section, key), target in MOVED.items():
        params = out.get(section, {}).get("ros__parameters", {})
        if key in params:
            value = params.pop(key)
            out.setdefault(target, {"ros__parameters": {}})["ros__parameters"].setdefault(key, value)
    return out


def config_conflicts(old: dict, new: dict) -> list[str]:
    """Settings that differ between a started variant's config and this invocation's (size and threads aside)."""
    conflicts = []
    for section in sorted(set(old) | set(new)):
        a = old.get(section, {}).get("ros__parameters", {})
        b = new.get(section, {}).get("ros__parameters", {})
        for key in sorted(set(a) | set(b)):
            if (section, key) in MAY_CHANGE:
                continue
            if a.get(key) != b.get(key):
                conflicts.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return conflicts


# -- run state -------------------------------------------------------------------------------------


# -- demos -----------------------------------------------------------------------------------------


def demo_folder(out: Path, count: int, seed: int) -> Path:
    """Named by count and first seed, so other demos are another setting (a conflict), never a silent swap."""
    return out / f"demos_{count}_s{seed}"


def ensure_demos(final: Path, count: int, seed: int, image_px: int, task: str) -> Path:
    """``count`` scripted-expert demos in ``final`` (collected once; a cut-short collection is redone)."""
    if len(list(final.rglob("*.npz"))) >= count:
        return final
    out = final.parent
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    command = [
        sys.executable, "-m", "vlac.cli", "collect-demos", "--task", task, "--episodes", str(count),
        "--seed", str(seed), "--image-size", str(image_px), "--out", str(tmp), "--no-bags",
    ]  # fmt: skip
    print(f"rl_experiment: collecting {count} demos: {' '.join(command[2:])}", flush=True)
    started = time.monotonic()
    # collect-demos's progress bar goes to stderr: into a log file, not onto the screen
    with open(final.with_name(final.name + ".log"), "w", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise ExperimentError(f"collect-demos exited with {code}; see {final.name}.log in {out}")
    print(f"rl_experiment: demos collected in {time.monotonic() - started:.0f} s", flush=True)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


# -- one variant -----------------------------------------------------------------------------------

#: Session lines worth echoing to the terminal (all lines go to session.log): evaluations, policy updates, errors.
_ECHO = re.compile(r"^(\[eval\]|session:|vlac_trainer:|\[\w+\] stopped|Traceback|\w*Error)")


def simulating_env() -> dict[str, str]:
    """The environment of a child that simulates: this one's, rendering headless with EGL unless set otherwise."""
    return {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def run_session(vdir: Path, config_path: Path, episodes: int) -> tuple[int, float]:
    """One ``vlac session`` invocation; every output line goes to session.log with its elapsed seconds."""
    command = [sys.executable, "-m", "vlac.cli", "session", "--config", str(config_path), "--episodes", str(episodes)]
    env = {
        **simulating_env(),
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # a crash prints every thread's stack into session.log
    }
    started = time.monotonic()
    with open(vdir / "session.log", "a", encoding="utf-8") as log:
        log.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {' '.join(command[2:])}\n")
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        interrupted = False
        while True:
            try:
                for line in proc.stdout:
                    log.write(f"{time.monotonic() - started:9.2f} {line}")
                    log.flush()
                    if _ECHO.search(line):
                        print(f"  [{run_name(vdir)}] {line.rstrip()}", flush=True)
                break
            except KeyboardInterrupt:  # the session got the same SIGINT: keep logging while it records and saves
                interrupted = True
        code = proc.wait()
        if interrupted:
            _log_run(vdir, episodes, code, time.monotonic() - started)
            raise KeyboardInterrupt
    wall = time.monotonic() - started
    _log_run(vdir, episodes, code, wall)
    return code, wall


def _log_run(vdir: Path, episodes: int, code: int, wall_s: float) -> None:
    record = {"utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "episodes": episodes, "exit": code}
    with open(vdir / "experiment_runs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({**record, "wall_s": round(wall_s, 1)}) + "\n")


def check_layout(vdir: Path) -> None:
    """Refuse a variant folder holding a session itself: a run from before --seeds, which would be ignored."""
    if (vdir / "episodes.jsonl").exists():
        raise ExperimentError(
            f"{vdir} holds a run from before --seeds (runs now live in {vdir.name}/seed<k>/); "
            "use another --out or move that run away"
        )


def check_run(rdir: Path, config: dict) -> None:
    """Refuse to resume a started run under other settings, its seeds included (checked before any runs)."""
    config_path = rdir / "experiment_config.yaml"
    if (rdir / "episodes.jsonl").exists() and config_path.exists():
        # older runs wrote relative paths, and some keys where they no longer live
        old = moved_into_place(absolute_paths(yaml.safe_load(config_path.read_text(encoding="utf-8"))))
        conflicts = config_conflicts(old, config)
        if conflicts:
            raise ExperimentError(
                f"run {run_name(rdir)} in {rdir} was started with other settings ({'; '.join(conflicts)}); "
                "use another --out or delete that folder"
            )


def run_seed(variant: Variant, seed: int, config: dict, out: Path, crash_resumes: int = 2) -> str:
    """Start, resume or skip one (variant, seed) run; returns what happened."""
    rdir = run_dir(out, variant.name, seed)
    rdir.mkdir(parents=True, exist_ok=True)
    config_path = rdir / "experiment_config.yaml"
    target = config["session"]["ros__parameters"]["episodes"]
    started = (rdir / "episodes.jsonl").exists()
    header = (
        f"# written by bench/rl_experiment.py from {TEMPLATE} for variant {variant.name}: {variant.label}, "
        f"training seed {seed}\n"
    )
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    if is_finished(rdir, target):
        return "finished earlier"
    remaining = target - finished_training(read_jsonl(rdir / "episodes.jsonl"))
    print(
        f"rl_experiment: {run_name(rdir)} ({variant.label}): "
        f"{'resuming, ' if started else ''}{max(remaining, 0)} training episode(s) to go",
        flush=True,
    )
    resumes = 0
    while True:
        code, wall = run_session(rdir, config_path, target)  # a resumed session runs only what is missing
        print(f"rl_experiment: {run_name(rdir)}: exit {code} after {wall:.0f} s", flush=True)
        name = crash_signal(code)
        if name is None or resumes == crash_resumes:
            break
        resumes += 1
        print(
            f"rl_experiment: {run_name(rdir)}: the session crashed ({name}; stacks in session.log); "
            f"resuming from its checkpoint ({resumes} of {crash_resumes})",
            flush=True,
        )
    if code == 0:
        audit_run(rdir)
    return "ran" if code == 0 else f"session exit {code}"


def final_check_run(rdir: Path, config: dict, trials: int) -> str:
    """The run's last policy, greedy, on ``trials`` held-out scenes (the session's eval_seed on): ``vlac actor
    eval`` into <rdir>/final_check/ (log: final_check.log); kept until the run gets another last policy.

    Why: the session's evaluations are 10 trials on the first 10 of those scenes, which disagreed with 40 by up
    to 27 points; this is the report's headline figure. Trials end on ground-truth success (or the step limit),
    whatever ended the session's own episodes.
    """
    policy = final_policy_dir(rdir)
    if policy is None or not policy.is_dir():
        return f"final check: no final policy in {rdir}"
    check = read_final_check(rdir)
    if check is not None and check["trials"] == trials:
        return f"final check: {check['successes']}/{trials} (earlier)"
    params = {name: section["ros__parameters"] for name, section in config.items()}
    code = actor_eval(policy, params, trials, params["session"]["eval_seed"], rdir / FINAL_CHECK)
    check = read_final_check(rdir)
    if code != 0 or check is None:
        return f"final check: exit {code} (final_check.log)"
    return f"final check: {check['successes']}/{trials}"


def pool_check_run(rdir: Path, config: dict) -> str | None:
    """A scene-pool run's prior and last policy, greedy, once on each of the K training scenes of arm 0's pool:
    <rdir>/pool_check/{prior,final}/ (logs beside), each kept while it scores the same policy. None for a run
    without a pool. Why: beside the held-out final check, it tells a policy that learned nothing from one that
    learned its training scenes and carried none of it to new ones.
    """
    params = {name: section["ros__parameters"] for name, section in config.items()}
    pool = int(params[MANAGER].get("scene_pool", 0))
    if not pool:
        return None
    policy = final_policy_dir(rdir)
    if policy is None or not policy.is_dir():
        return f"pool check: no final policy in {rdir}"
    said = []
    for name, checkpoint in (("prior", Path(params["actor_node"]["checkpoint_path"])), ("final", policy)):
        folder = rdir / POOL_CHECK / name
        check = read_eval(folder / "results.json", checkpoint)
        if check is None or check["trials"] != pool:
            first = arm_seeds(params[MANAGER]["scene_seed"], 0, scene_pool=pool).scene_seed  # arm 0's pool
            code = actor_eval(checkpoint, params, pool, first, folder)
            check = read_eval(folder / "results.json", checkpoint)
            if code != 0 or check is None:
                return f"pool check: {name}: exit {code} ({folder}.log)"
        said.append(f"{name} {check['successes']}/{pool}")
    return f"pool check ({pool} training scenes): {', '.join(said)}"


def seed_ranges(seeds: set[int]) -> list[tuple[int, int]]:
    """The runs of consecutive seeds in ``seeds`` as (first, last), ascending: one ``vlac actor eval`` each."""
    ranges: list[tuple[int, int]] = []
    for seed in sorted(seeds):
        if ranges and seed == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seed)
        else:
            ranges.append((seed, seed))
    return ranges


def scene_control_run(rdir: Path, config: dict, repeats: int) -> str:
    """The run's prior, sampled, ``repeats`` times on each of the run's training scenes (those with a verdict on
    the whole task): ``vlac actor eval --sample --repeats`` into <rdir>/scene_control/seeds<a>-<b>/ (logs beside)
    for the scenes with fewer draws so far, so a run resumed to more episodes adds only its new scenes. Why: the
    run's training success means something only against the prior's on the same scenes (``rl_report.SCENE_CONTROL``).
    """
    params = {name: section["ros__parameters"] for name, section in config.items()}
    prior, task = Path(params["actor_node"]["checkpoint_path"]), params[SIM]["task"]
    train = [row for _, row in verdict_rows(read_jsonl(rdir / "episodes.jsonl"))]
    if not train:
        return f"scene control: no training episode with a verdict in {rdir}"
    scenes = {scene_of(row) for row in train}
    other = sorted({t for t, _ in scenes} - {task})
    if other:
        return f"scene control: training scenes of task(s) {other}, not the run's {task!r}"
    evaluations = scene_control_evaluations(rdir, prior)
    draws = prior_outcomes(evaluations)
    short = {seed for scene_task, seed in scenes if len(draws.get((scene_task, seed), [])) < repeats}
    for first, last in seed_ranges(short):
        folder = rdir / SCENE_CONTROL / f"seeds{first}-{last}_r{repeats}"
        # a stream of its own per evaluation: more repeats later must not redraw the earlier ones
        sample_seed = SCENE_CONTROL_SAMPLE_SEED + len(evaluations)
        code = actor_eval(prior, params, last - first + 1, first, folder, sample=(repeats, sample_seed))
        if code != 0:
            return f"scene control: exit {code} ({folder}.log)"
        evaluations.append(json.loads((folder / "results.json").read_text()))
    figures = read_scene_control(rdir, prior)
    if figures is None:
        return f"scene control: the evaluations in {rdir / SCENE_CONTROL} do not cover the training scenes"
    return (
        f"scene control (the prior sampled {figures['repeats']}+ times per training scene): run "
        f"{figures['run_successes']}, prior {figures['prior_expected']:.1f}, difference {figures['difference']:+.1f} "
        f"(null sd {figures['null_sd']:.1f})"
    )


def actor_eval(
    checkpoint: Path, params: dict, trials: int, first_seed: int, out: Path, sample: tuple[int, int] | None = None
) -> int:
    """``vlac actor eval`` of ``checkpoint``, greedy, on ``trials`` scenes from ``first_seed`` into ``out`` (its log:
    ``out`` + ".log"); the run's task and step limit. ``sample`` (repeats, sampling seed): sampled instead, that many
    times per scene. Returns its exit code."""
    command = [
        sys.executable, "-m", "vlac.cli", "actor", "eval", "--checkpoint", str(checkpoint),
        "--task", params[SIM]["task"], "--episodes", str(trials), "--seed", str(first_seed),
        "--max-steps", str(params[MANAGER]["max_steps"]), "--threads", "1", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    if sample is not None:
        command += ["--sample", "--repeats", str(sample[0]), "--sample-seed", str(sample[1])]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.log", "w", encoding="utf-8") as log:
        return subprocess.run(command, cwd=ROOT, env=simulating_env(), stdout=log, stderr=subprocess.STDOUT).returncode


def audit_run(rdir: Path) -> None:
    """``vlac critic audit`` over the run's training episodes: <rdir>/critic_audit/ (log: critic_audit.log)."""
    command = [sys.executable, "-m", "vlac.cli", "critic", "audit", str(rdir), "--episodes", "train"]
    with open(rdir / "critic_audit.log", "w", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    print(f"rl_experiment: {run_name(rdir)}: critic audit {'written' if code == 0 else f'exit {code}'}", flush=True)


# -- results ---------------------------------------------------------------------------------------


# -- main ------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds, one run each (default: 0)")
    p.add_argument("--episodes", type=int, help="RL training episodes per run, all arms together (template: 200)")
    p.add_argument("--eval-every", type=int, help="training episodes between greedy evaluations (template: 20)")
    p.add_argument("--eval-trials", type=int, help="greedy trials per evaluation (template: 10)")
    p.add_argument(
        "--final-trials",
        type=int,
        default=40,
        help="held-out scenes the final policy of each finished run is scored on, greedy (default 40; 0: none)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads of each session (template: 1)")
    p.add_argument("--out", type=Path, default=Path("out/rl_experiment"), help="work folder (<out>/<v>/seed<k>)")
    p.add_argument("--docs", type=Path, default=Path("docs"), help="folder of the PNGs")
    p.add_argument("--demos", type=int, help="scripted-expert demos for variant b (template's max_demos: 50)")
    p.add_argument("--demo-seed", type=int, default=500000, help="first demo scene seed (apart from train/eval seeds)")
    p.add_argument(
        "--prior",
        type=Path,
        help="actor checkpoint every run starts from, for actor and trainer (template: models/sim_actor); "
        "use a --out of its own: a run folder refuses to resume under another prior",
    )
    p.add_argument(
        "--critic",
        type=Path,
        help="critic checkpoint of every run (template: models/sim_critic): the reward of the critic variants, "
        "recorded beside ground truth in every variant; a run folder refuses to resume under another critic",
    )
    p.add_argument(
        "--logit-temperature",
        type=float,
        help="start from a copy of the prior whose policy samples and scores softmax(logits / T) (its "
        "policy_settings.json; greedy actions unchanged), written to <out>/prior_logit_T<T>",
    )
    p.add_argument(
        "--field-logit-temperatures",
        type=float,
        nargs=len(ACTION_FIELDS),
        metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW", "OPEN"),
        help="start from a copy of the prior whose fields' decisions sample and score at their own logit temperature "
        "(policy_settings.json's field_logit_temperatures; not with --logit-temperature), written to "
        "<out>/prior_logit_<x>_<y>_..._<open>",
    )
    p.add_argument(
        "--crash-resumes",
        type=int,
        default=2,
        help="times a crashed session (SIGSEGV, SIGBUS, SIGABRT) is resumed at once (default 2; 0: never)",
    )
    p.add_argument(
        "--scene-control",
        type=int,
        default=0,
        metavar="R",
        help="after each finished run, its prior sampled R times on each of the run's training scenes, and the "
        "run's training success against it in the table (default 0: none; costs about R/4 of a gg run's episodes, "
        "without trainer or critic)",
    )
    p.add_argument(
        "--lesson-agreement",
        action="store_true",
        help="the trainer logs whether its updates' lessons agree (trainer_node.lesson_agreement; the table's lessons "
        "column); each update as without it, about a third slower on CPU; may be turned on or off on a resume",
    )
    p.add_argument(
        "--keep-policy-every",
        type=int,
        default=0,
        metavar="K",
        help="keep every K-th policy version of a run on disk besides the newest three "
        "(trainer_node.keep_policy_every, about 17 MB each at 96 px), so its mid-run policies can be evaluated; "
        "may change on a resume (0: none)",
    )
    p.add_argument(
        "--log-prior-kl",
        action="store_true",
        help="the trainer logs each update's KL to the prior, the policy's drift (trainer_node.log_prior_kl; the "
        "table's drift column); each update as without it; may be turned on or off on a resume",
    )
    p.add_argument(
        "--kl-guard",
        type=float,
        default=0.0,
        metavar="NATS",
        help="end an update before the step of a minibatch whose KL to the pre-update policy exceeds this "
        "(trainer_node.kl_guard, nats per action; default 0: off); a resume must give the same",
    )
    p.add_argument("--report-only", action="store_true", help="run nothing: plots and summary from what is on disk")
    args = p.parse_args(argv)
    for key in (
        "episodes", "eval_every", "eval_trials", "threads", "demos", "crash_resumes", "final_trials", "scene_control",
        "keep_policy_every", "kl_guard",
    ):  # fmt: skip
        value = getattr(args, key)
        if value is not None and value < (1 if key in ("eval_trials", "demos") else 0):
            p.error(f"--{key.replace('_', '-')}: {value} is too small")
    lowest, highest = TEMPERATURE_RANGE
    if args.logit_temperature is not None and not lowest <= args.logit_temperature <= highest:
        p.error(f"--logit-temperature: {args.logit_temperature} outside {lowest:g}..{highest:g}")
    if args.field_logit_temperatures is not None:
        if args.logit_temperature is not None:
            p.error("--field-logit-temperatures sets every field's temperature; leave out --logit-temperature")
        bad = [t for t in args.field_logit_temperatures if not lowest <= t <= highest]
        if bad:
            p.error(f"--field-logit-temperatures: {bad} outside {lowest:g}..{highest:g}")
    bad = [seed for seed in args.seeds if not 0 <= seed < SEED_LIMIT]
    if bad:
        p.error(f"--seeds: {bad} outside 0..{SEED_LIMIT - 1} (the training scenes of higher seeds meet arm 1's)")
    args.seeds = list(dict.fromkeys(args.seeds))
    return args


def from_root(path: Path) -> Path:
    """``path`` as given from the caller's folder, relative to the repository root where it lies inside it."""
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def tempered_prior(prior: Path, out: Path, temperature: float | tuple[float, ...]) -> Path:
    """A copy of the policy checkpoint ``prior`` whose policy_settings.json sets its logit temperature: one for every
    field (``<out>/prior_logit_T<temperature>``) or one per field (``field_logit_temperatures``,
    ``<out>/prior_logit_<x>_<y>_..._<open>``). Made once; a later run reuses it and resumes under the same prior."""
    from dataclasses import replace

    if isinstance(temperature, tuple):
        target = out / ("prior_logit_" + "_".join(f"{t:g}" for t in temperature))
        setting = {"field_logit_temperatures": temperature}
    else:
        target = out / f"prior_logit_T{temperature:g}"
        setting = {"logit_temperature": temperature}
    if not target.is_dir():
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(prior, staging)
        write_policy_settings(staging, replace(read_policy_settings(prior), **setting))
        staging.rename(target)
    return target


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out, args.docs = from_root(args.out), from_root(args.docs)
    if args.prior is not None:
        if not (args.prior / "value_head.safetensors").is_file():
            print(
                f"rl_experiment: --prior {args.prior}: not a policy checkpoint (no value_head.safetensors)",
                file=sys.stderr,
            )
            return 2
        args.prior = from_root(args.prior)
    if args.critic is not None:
        if not (args.critic / "config.json").is_file():
            print(f"rl_experiment: --critic {args.critic}: not a model checkpoint (no config.json)", file=sys.stderr)
            return 2
        args.critic = from_root(args.critic)
    os.chdir(ROOT)  # the template's model paths are relative to the repository root
    template = load_template()
    temperature = args.logit_temperature
    if args.field_logit_temperatures is not None:
        temperature = tuple(args.field_logit_temperatures)
    if temperature is not None:
        source = args.prior or Path(template["actor_node"]["ros__parameters"]["checkpoint_path"])
        args.out.mkdir(parents=True, exist_ok=True)
        args.prior = tempered_prior(source, args.out, temperature)
    variants = [VARIANTS[name] for name in dict.fromkeys(args.variants)]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    status = {}
    session = template["session"]["ros__parameters"]
    if args.demos is None:
        args.demos = session["max_demos"]
    target = args.episodes if args.episodes is not None else session["episodes"]
    sim = template[SIM]["ros__parameters"]
    demos = demo_folder(args.out, args.demos, args.demo_seed)
    plans = [
        (v, k, absolute_paths(variant_config(template, v, args, args.out, demos if v.demos else None, k)))
        for v in variants
        for k in args.seeds
    ]
    try:
        if not args.report_only:  # a report reads what is there, whatever settings made it
            check_seed_scenes(args.seeds, target)
            for variant in variants:
                check_layout(args.out / variant.name)
            for variant, seed, config in plans:
                check_run(run_dir(args.out, variant.name, seed), config)
        for variant, seed, config in plans:
            if args.report_only:  # the run's own state is its "finished" and episode counts
                status[variant.name, seed] = "reported only"
                continue
            if variant.demos:
                ensure_demos(demos, args.demos, args.demo_seed, sim["image_size_px"], sim["task"])
            status[variant.name, seed] = run_seed(variant, seed, config, args.out, args.crash_resumes)
            rdir = run_dir(args.out, variant.name, seed)
            if not is_finished(rdir, target):
                continue
            if args.final_trials:
                said = final_check_run(rdir, config, args.final_trials)
                print(f"rl_experiment: {run_name(rdir)}: {said}", flush=True)
            if (said := pool_check_run(rdir, config)) is not None:
                print(f"rl_experiment: {run_name(rdir)}: {said}", flush=True)
            if args.scene_control:
                said = scene_control_run(rdir, config, args.scene_control)
                print(f"rl_experiment: {run_name(rdir)}: {said}", flush=True)
    except ExperimentError as error:
        print(f"rl_experiment: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rl_experiment: interrupted; run the same command again to resume", file=sys.stderr)
        return 130

    results = []
    for v in variants:
        runs = [collect_run(v, k, args.out, target) for k in args.seeds]
        for run in runs:
            run["status"] = status.get((v.name, run["seed"]))
        results.append(aggregate(v, runs))
    measured = {run["eval_trials"] for r in results for run in r["runs"] if run["eval_trials"]}  # --report-only: any
    trials = args.eval_trials or session["eval_trials"]
    if measured:
        trials = measured.pop() if len(measured) == 1 else "/".join(map(str, sorted(measured)))
    args.docs.mkdir(parents=True, exist_ok=True)
    curves, bars = args.docs / "rl_success_vs_episodes.png", args.docs / "rl_episodes_to_80.png"
    train_curves = args.docs / "rl_train_success.png"
    plot_curves(results, curves, trials)
    plot_train_success(results, train_curves)
    plot_to_threshold(results, bars)
    plots = [curves, train_curves, bars]
    false_done = args.docs / "rl_false_done.png"
    if plot_false_done(run_dir(args.out, variants[0].name, args.seeds[0]), false_done):  # one folder's bags
        plots.append(false_done)
    print(table(results))
    print(
        json.dumps(
            {
                "bench": "rl_experiment",
                "template": str(TEMPLATE),
                "actor": str(args.prior or template["actor_node"]["ros__parameters"]["checkpoint_path"]),
                "critic": str(args.critic or template["critic_node"]["ros__parameters"]["checkpoint"]),
                "episodes_per_variant": target,
                "seeds": args.seeds,
                "eval_trials": trials,
                "final_trials": args.final_trials,
                "threshold": THRESHOLD,
                "train_success_window": TRAIN_WINDOW,
                "wall_s_this_invocation": round(time.monotonic() - started, 1),
                "plots": [str(p) for p in plots],
                "variants": results,
            }
        )
    )
    return 0 if all(r["finished"] for r in results) or args.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
