"""Stack commands: up, down, env, status, metrics, apply and demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actors.runtime import event_loop
from cluster.config import load_config
from cluster.local.stack import LocalStack, load_state
from cluster.ops.cli_common import (
    DEFAULT_CONFIG,
    EXIT_UNAVAILABLE,
    CliError,
    cli_config,
    supervisor_handle,
)

__all__ = ["cmd_apply", "cmd_demo", "cmd_down", "cmd_env", "cmd_metrics", "cmd_status", "cmd_up"]


def cmd_up(args: argparse.Namespace) -> int:
    from cluster.job import submit_deploy
    from cluster.ops.render import console

    path = args.config or DEFAULT_CONFIG
    cfg = load_config(path)  # fail on a bad config before starting anything
    stack = LocalStack()
    with console.status("starting nats-server and Ray ..."):
        state = stack.start(str(Path(path).resolve()))
    nats_url = state.nats_url if cfg.nats.url == "embedded" else None
    try:
        with console.status("deploying the supervision tree (ray job submit) ..."):
            status = submit_deploy(state.dashboard_url, str(Path(path).resolve()), nats_url)
    except Exception:
        stack.stop()
        raise
    if args.json:
        from cluster.ops.render import print_json

        print_json({"nats_url": state.nats_url, "ray_address": state.ray_address,
                    "dashboard_url": state.dashboard_url, "tree": status})
        return 0
    from cluster.ops.render import render_tree

    render_tree(status)
    console.print(f"NATS:            {state.nats_url}")
    console.print(f"Ray dashboard:   {state.dashboard_url}")
    console.print(f"Ray address:     {state.ray_address}")
    console.print(f"logs:            {stack.logs}/")
    console.print(f"re-apply with:   RAY_ADDRESS={state.dashboard_url} ray job submit --working-dir . -- "
                  f"python -m cluster.job --config {path}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from cluster.ops.render import console

    state = load_state()
    stack = LocalStack()
    if state is None:
        if stack.stop():  # a stack from this directory whose state file was removed while it ran
            console.print("stopped a stack from this directory whose state file was gone (nats-server and Ray)")
        else:
            console.print("nothing is running")
        return 0
    if stack.running() is not None:
        # Drain the stages first (each finishes and acknowledges its batch in hand), then stop processes.
        with console.status("draining the system ..."):
            try:
                from cluster.job import teardown
                from cluster.local.ray_env import init_ray

                cfg = load_config(state.config)
                init_ray(state.ray_address, namespace=cfg.name)
                teardown(cfg, timeout=30)
            except Exception as exc:
                console.print(f"drain skipped: {exc}")
    stack.stop()
    console.print("stopped nats-server and Ray")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state = load_state()
    if state is None:
        raise CliError("no local stack is running here: run `trade up` first", EXIT_UNAVAILABLE)
    print(f"export RAY_ADDRESS={state.dashboard_url}")
    print(f"export TRADE_NATS_URL={state.nats_url}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import ray

    from cluster.ops.render import console, print_json, render_tree

    cfg = cli_config(args)
    supervisor = supervisor_handle(cfg)
    status = ray.get(supervisor.status.remote(), timeout=30)
    if args.json:
        print_json({"nats_url": cfg.nats.url, "tree": status})
    else:
        render_tree(status)
        console.print(f"NATS: {cfg.nats.url}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    import threading

    from prometheus_client import REGISTRY, generate_latest, start_http_server

    from actors.runtime.nats_conn import connect
    from cluster.ops.metrics import SystemCollector, run_coroutine, take_snapshot
    from cluster.ops.render import console
    from cluster.topology import consumer_specs

    cfg = cli_config(args)
    supervisor = supervisor_handle(cfg)
    loop = event_loop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="metrics", daemon=True)
    thread.start()
    nc = run_coroutine(loop, connect(cfg.nats.url, name="trade-metrics", connect_timeout=cfg.nats.connect_timeout,
                                     reconnect_forever=False), 30)
    consumers = [(c.stream, c.durable) for c in consumer_specs(cfg)]
    collector = SystemCollector(lambda: run_coroutine(loop, take_snapshot(supervisor, nc.jetstream(), consumers), 20))
    REGISTRY.register(collector)
    try:
        if args.once:
            sys.stdout.write(generate_latest(REGISTRY).decode())
            return 0
        start_http_server(args.port, addr=args.host)
        console.print(f"Prometheus metrics on http://{args.host}:{args.port}/metrics (Ctrl-C stops)")
        threading.Event().wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        run_coroutine(loop, nc.close(), 5)
        loop.call_soon_threadsafe(loop.stop)


def cmd_apply(args: argparse.Namespace) -> int:
    from cluster.job import submit_deploy
    from cluster.ops.render import console, print_json, render_tree

    state = load_state()
    if state is None:
        raise CliError("no local stack is running here: run `trade up` first, or on a cluster use "
                       "`ray job submit -- python -m cluster.job --config FILE`", EXIT_UNAVAILABLE)
    cfg = load_config(args.config)  # a bad config fails here, before anything changes
    nats_url = state.nats_url if cfg.nats.url == "embedded" else None
    with console.status("re-applying the config (ray job submit) ..."):
        status = submit_deploy(state.dashboard_url, str(Path(args.config).resolve()), nats_url)
    if args.json:
        print_json(status)
    else:
        render_tree(status)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cluster.demo.run import run_demo

    return run_demo(config_path=args.config or DEFAULT_CONFIG, orders=args.orders, rate=args.rate,
                    as_json=args.json)

