"""One set of consensus timeouts: the defaults live in node/protocol/limits.py, with one name
each."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from node.consensus.driver import DriverConfig
from node.consensus.tendermint import ConsensusConfig
from node.protocol import limits
from node.run import config
from node.run.daemon import consensus_config

SETTINGS = config.NodeConfig("n0", True, "127.0.0.1", 26600, "127.0.0.1", 26700, ())


def test_a_node_without_timeouts_runs_consensus_on_its_defaults() -> None:
    assert consensus_config(SETTINGS) == DriverConfig()
    assert DriverConfig().consensus == ConsensusConfig()
    assert ConsensusConfig().propose_ms == config.Timeouts().propose_ms == limits.TIMEOUT_PROPOSE_MS
    assert DriverConfig().commit_ms == config.Timeouts().commit_ms == limits.TIMEOUT_COMMIT_MS


def test_config_and_consensus_call_each_timeout_by_one_name() -> None:
    in_config = {f.name for f in fields(config.Timeouts)}
    assert in_config == {f.name for f in fields(ConsensusConfig)} | {"commit_ms"}
    chosen = config.Timeouts(*range(1_001, 1_001 + len(in_config)))
    driver = consensus_config(replace(SETTINGS, timeouts=chosen))
    for name in in_config - {"commit_ms"}:
        assert getattr(driver.consensus, name) == getattr(chosen, name), name
    assert driver.commit_ms == chosen.commit_ms


def test_a_timeout_above_the_cap_is_refused() -> None:
    text = config.render(SETTINGS)
    capped = text.replace("propose_ms = 1000", f"propose_ms = {limits.TIMEOUT_MS_MAX}")
    assert config.parse(capped).timeouts.propose_ms == limits.TIMEOUT_MS_MAX
    above = text.replace("propose_ms = 1000", f"propose_ms = {limits.TIMEOUT_MS_MAX + 1}")
    with pytest.raises(config.ConfigError, match=f"from 0 to {limits.TIMEOUT_MS_MAX}"):
        config.parse(above)


def test_a_config_the_consensus_would_refuse_is_refused_when_read() -> None:
    text = config.render(SETTINGS).replace("prevote_ms = 500", "prevote_ms = 0")
    with pytest.raises(config.ConfigError, match="timeouts must be positive"):
        config.parse(text)
