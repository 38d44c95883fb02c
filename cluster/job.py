"""`python -m cluster.job --config FILE`: deploy (or re-apply) the system on the Ray cluster it runs in.

Run it through `ray job submit --working-dir . -- python -m cluster.job --config examples/local.yaml`.
It creates the JetStream topology, gets or creates the root supervisor (a named, detached actor),
applies the config to it, waits until every child consumes, prints the tree and exits. The system
keeps running after the job ends; re-submitting with a changed config re-applies it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import ray

from actors.runtime import event_loop
from actors.runtime.nats_conn import BrokerUnavailable, connect
from cluster.config import ConfigError, SystemConfig, load_config, resolve_nats_url
from cluster.local.ray_env import init_ray
from cluster.plan import tree_plan
from cluster.topology import ensure_topology

__all__ = ["STATUS_MARKER", "deploy", "main", "resolve_nats_url", "submit_deploy", "teardown"]

STATUS_MARKER = "TRADE-STATUS "


async def bootstrap(cfg: SystemConfig) -> None:
    nc = await connect(cfg.nats.url, name="bootstrap", connect_timeout=cfg.nats.connect_timeout,
                       reconnect_forever=False)
    try:
        await ensure_topology(nc.jetstream(), cfg)
    finally:
        await nc.close()


def _supervisor(cfg: SystemConfig, create: bool) -> Any:
    from supervision.actor_options import actor_options
    from supervision.supervisor import SUPERVISOR_NAME, Supervisor

    try:
        return ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    except ValueError:
        if not create:
            return None
    options = actor_options(cfg.name, SUPERVISOR_NAME, cfg.supervision.num_cpus, cfg.supervision.niceness)
    return Supervisor.options(**options, get_if_exists=True).remote(tree_plan(cfg).model_dump_json())


def deploy(cfg: SystemConfig, timeout: float = 180.0) -> dict[str, Any]:
    """Topology, then the supervisor with this config. Returns the supervision tree's status."""
    event_loop.run(bootstrap(cfg))
    supervisor = _supervisor(cfg, create=True)
    return ray.get(supervisor.apply.remote(tree_plan(cfg).model_dump_json()), timeout=timeout)


def submit_deploy(dashboard_url: str, config_path: str, nats_url: str | None = None,
                  timeout: float = 300.0) -> dict[str, Any]:
    """Deploy through Ray's job submission API, as `ray job submit` does; returns the tree's status.

    Ray's own messages about the system's actors then go to the job's log, not to this terminal.
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    entrypoint = f"python -m cluster.job --config {config_path}"
    if nats_url:
        entrypoint += f" --nats-url {nats_url}"
    jobs = JobSubmissionClient(dashboard_url)
    job_id = jobs.submit_job(entrypoint=entrypoint)
    deadline = time.monotonic() + timeout
    while not (status := jobs.get_job_status(job_id)).is_terminal():
        if time.monotonic() > deadline:
            jobs.stop_job(job_id)
            raise TimeoutError(f"deploy job {job_id} did not finish within {timeout:.0f}s")
        time.sleep(0.2)
    logs = jobs.get_job_logs(job_id)
    if status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"deploy job {job_id} {status}:\n{logs[-3000:]}")
    line = next(ln for ln in reversed(logs.splitlines()) if ln.startswith(STATUS_MARKER))
    return json.loads(line[len(STATUS_MARKER):])


def teardown(cfg: SystemConfig, timeout: float = 60.0) -> bool:
    """Drain and stop the system's actors. True when a supervisor was found."""
    supervisor = _supervisor(cfg, create=False)
    if supervisor is None:
        return False
    try:
        ray.get(supervisor.shutdown.remote(), timeout=timeout)
    finally:
        ray.kill(supervisor, no_restart=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.job", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the system's YAML config file")
    parser.add_argument("--nats-url", help="override nats.url from the config")
    parser.add_argument("--down", action="store_true", help="stop the system instead of deploying it")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.nats_url:
            cfg = cfg.with_nats_url(args.nats_url)
        cfg = resolve_nats_url(cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    init_ray(namespace=cfg.name)
    try:
        if args.down:
            found = teardown(cfg)
            print("stopped" if found else "nothing to stop")
            return 0
        status = deploy(cfg)
    except BrokerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(status, indent=2))
    print(f"{STATUS_MARKER}{json.dumps(status)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
