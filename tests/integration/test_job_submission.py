"""The README's deployment path: `ray job submit ... -- python -m cluster.job --config FILE`,
through Ray's job submission client, then an order placed through the deployed system."""

from __future__ import annotations

import time

import pytest
import yaml

from cluster.client.trading import TradingClient
from cluster.config import load_config
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


async def test_a_submitted_job_deploys_the_system_and_an_order_goes_through(nats_server, ray_head, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    from cluster.job import teardown

    cfg_data = yaml.safe_load((ROOT / "examples" / "local.yaml").read_text())
    cfg_data["name"] = "jobtest"
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(cfg_data))
    jobs = JobSubmissionClient(ray_head.dashboard_url)
    job_id = jobs.submit_job(
        entrypoint="python -m cluster.job --config job.yaml",
        runtime_env={"working_dir": str(tmp_path), "env_vars": {"TRADE_NATS_URL": nats_server.url}},
    )
    cfg = load_config(tmp_path / "job.yaml").with_nats_url(nats_server.url)
    try:
        deadline = time.monotonic() + 180
        while not jobs.get_job_status(job_id).is_terminal():
            assert time.monotonic() < deadline, "the deploy job did not finish"
            time.sleep(0.5)
        logs = jobs.get_job_logs(job_id)
        assert jobs.get_job_status(job_id) == JobStatus.SUCCEEDED, logs[-2000:]
        assert '"state": "running"' in logs
        async with TradingClient.from_config(cfg) as client:
            # local.yaml runs the order-book venue: a market order always finds the liquidity provider.
            oid = await client.place_order("ACC2", "AAPL", "BUY", 100, order_type="MARKET", allocation_profile="FUND3")
            outcome = await client.wait(oid, timeout=30)
        assert outcome.status == "filled"
        assert outcome.allocated == {"A": 33, "B": 33, "C": 34}
    finally:
        teardown(cfg, timeout=30)
