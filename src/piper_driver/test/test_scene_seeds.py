import pytest

from piper_driver.sim.scene_seeds import SceneSeeds


def test_without_a_pool_every_fresh_start_is_a_new_scene():
    scenes = SceneSeeds(7)
    assert [scenes.nth(n) for n in range(4)] == [7, 8, 9, 10]
    assert scenes.after(7) == 8 and scenes.after(500) == 501


def test_a_pool_cycles_over_its_scenes_and_a_resumed_arm_goes_on_in_the_cycle():
    scenes = SceneSeeds(1000, pool_size=3)
    seed, drawn = 1000, []
    for _ in range(7):
        drawn.append(seed)
        seed = scenes.after(seed)
    assert drawn == [1000, 1001, 1002, 1000, 1001, 1002, 1000]
    assert [scenes.nth(n) for n in range(7)] == drawn  # the n-th start by either route
    fresh = scenes.draws(1001)  # what a robot draws from: a resumed arm at position 1
    assert [next(fresh) for _ in range(4)] == [1001, 1002, 1000, 1001]
    assert SceneSeeds(1000, pool_size=1).after(1000) == 1000  # one scene throughout


def test_seeds_the_rule_never_draws_are_refused_with_the_pool_named():
    with pytest.raises(ValueError, match="seed 1003 is outside the pool of 3 scenes from seed 1000"):
        SceneSeeds(1000, pool_size=3).after(1003)
    with pytest.raises(ValueError, match="seed 999 is outside"):
        SceneSeeds(1000, pool_size=3).require(999)
    with pytest.raises(ValueError, match="seed 1003 is outside"):
        SceneSeeds(1000, pool_size=3).draws(1003)  # at once, not at the first draw
    with pytest.raises(ValueError, match="non-negative"):
        SceneSeeds(0, pool_size=-1)
    with pytest.raises(ValueError, match="n >= 0"):
        SceneSeeds(0).nth(-1)
