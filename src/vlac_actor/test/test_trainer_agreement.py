"""The settings a trainer must repeat from the actor, compared (used by the session and the actor node)."""

from vlac_actor.config import ActorConfig
from vlac_actor.trainer_agreement import SHARED_WITH_TRAINER, trainer_disagreement


def test_the_first_differing_setting_is_named_with_both_values_and_unknown_ones_are_skipped():
    actor = ActorConfig(checkpoint_path="/models/a", max_task_chars=80)
    same = {key: getattr(actor, key) for key in SHARED_WITH_TRAINER}
    assert trainer_disagreement(actor, same) is None
    assert trainer_disagreement(actor, {}) is None
    assert trainer_disagreement(actor, {"max_task_chars": None, "policy_version": 0}) is None
    problem = trainer_disagreement(actor, {**same, "max_task_chars": 300}, actor_name="/actor", trainer_name="/trainer")
    assert problem.startswith("/trainer.max_task_chars = 300 but /actor.max_task_chars = 80;")
    assert trainer_disagreement(actor, {**same, "max_abs_position_mm": 1000}) is None  # a ROS integer for 1000.0
