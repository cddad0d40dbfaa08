"""The gRPC benchmark still runs end to end: server in its own process, or in this one."""

from __future__ import annotations

import pytest

from voc_bench import actions_grpc


@pytest.mark.parametrize(
    "run", [actions_grpc.run_separate, actions_grpc.run_in_process], ids=["separate", "in-process"]
)
def test_the_benchmark_runs(run: actions_grpc.Runner) -> None:
    result = run(30, 40)
    assert result["playbooks"] == 30 and result["calls"] == 40
    assert 0 < result["p50_ms"] <= result["max_ms"] and result["p99_ms"] > 0
    assert result["client_cpu_ms_per_call"] > 0
    assert (result["server_cpu_ms_per_call"] > 0) is (run is actions_grpc.run_separate)
