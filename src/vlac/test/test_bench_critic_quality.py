"""bench/critic_quality.py's command line: its done rules parse through vlac_critic.done_rule, and a bad one is a usage
error naming the text (the outcomes themselves: vlac_critic/test/test_done_rule.py)."""

from __future__ import annotations

import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def cq():
    yield from load_bench("critic_quality")


def test_a_bad_done_rule_is_a_usage_error_naming_it(cq, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cq.main(["folder", "--checkpoint", "c", "--done-rules", "0.8:3", "1.5:2"])
    assert exit_info.value.code == 2
    assert "'1.5:2': expected THRESHOLD:STEPS" in capsys.readouterr().err
