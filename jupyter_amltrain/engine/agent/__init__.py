"""The agent: one long-lived process per store home that owns the runs (``server``), and how the faces reach
it (``client``): ``ensure_agent``, ``warm_agent``, ``hand_run``, ``adopt_orphans``, ``agent_status``,
``stop_agent``."""

from jupyter_amltrain.engine.agent.client import (
    AgentUnavailable,
    adopt_orphans,
    agent_status,
    ensure_agent,
    hand_run,
    stop_agent,
    warm_agent,
)

__all__ = ["AgentUnavailable", "adopt_orphans", "agent_status", "ensure_agent", "hand_run", "stop_agent", "warm_agent"]
