"""``sendwise demo``: the whole loop on the embedded defaults, in a few minutes.

1. the engine learns on the reference Bernoulli cases (regret, reward, decisions/s);
2. policies run against a simulated seed-world population (table and plots), and hier_ts runs as an
   experiment against a holdout and the world's playbook, with its lift report;
3. every run is tracked in MLflow and the best learning policy becomes ``sendwise-policy@champion``;
4. the decision server starts on loopback with that champion, answers a few decisions and takes
   feedback over HTTP, and stops again.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx

from sendwise.models import Assignment, Experiment, Home, ModelUri, load_world, read_logs, sendwise_home, tracking_uri
from sendwise.models.experiments import lift_report
from sendwise.models.sim import bandit_runs
from sendwise.models.sim.simulate import simulate

from .lift import format_report
from .simulate import format_table
from .where import add_tracking_uri, announce

# The experiment's log keeps the days whose every attribution window (a week for e-mail) has closed.
LIFT_MIN_DAYS = 10
LIFT_EXPERIMENT = Experiment(Assignment(salt="demo", holdout_share=0.1, baseline_share=0.45), pre_days=7)

DEMO_POLICIES = ("hier_ts", "ts", "user_heuristic", "static", "random", "segment_oracle")
ORACLES = ("oracle", "segment_oracle")
DEMO_CUSTOMERS = (
    {"customer_id": "demo-ana", "timezone": "America/New_York", "region": "NA", "industry": "ecommerce",
     "campaign_type": "cart_reminder", "channels": ["email", "push", "sms", "in_app"]},
    {"customer_id": "demo-bruno", "timezone": "America/Sao_Paulo", "region": "LATAM", "industry": "fintech",
     "campaign_type": "onboarding", "channels": ["email", "whatsapp", "push"]},
    {"customer_id": "demo-chen", "timezone": "Asia/Shanghai", "region": "CN", "industry": "gaming",
     "campaign_type": "win_back", "channels": ["sms", "push", "app_inbox"],
     "quiet_hours": {"sms": {"start": 21, "end": 9}}},
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole loop on the embedded defaults and print what happened",
        description="Run the whole loop on the seed world in about two minutes: the numba engine learns a "
                    "known problem, policies compete in a simulation (tables and plots), MLflow tracks the runs "
                    "and promotes the champion, and a server loads it and answers one decision and its "
                    "feedback over HTTP. Everything is kept under the sendwise home.")
    parser.add_argument("--steps", type=int, default=50_000, help="decisions per engine learning run (default 50000)")
    parser.add_argument("--customers", type=int, default=5_000, help="simulated customers (default 5000)")
    parser.add_argument("--days", type=int, default=21, help="simulated days (default 21)")
    parser.add_argument("--seeds", type=int, default=2, help="simulation seeds (default 2)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where everything is kept (default: the sendwise home, $SENDWISE_HOME or ./.sendwise)")
    add_tracking_uri(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    home = sendwise_home() if args.state_dir is None else Home(args.state_dir.resolve(), "--state-dir")
    state_dir = home.root  # absolute: MLflow wants absolute file URIs
    state_dir.mkdir(parents=True, exist_ok=True)
    tracking = tracking_uri(args.tracking_uri, home=home)
    shown_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.relpath(home.mlflow_db)}"
    announce(state=None if args.state_dir is None else state_dir, tracking=tracking)
    _section("1. The engine: Thompson sampling on the numba core")
    print(engine_table(args.steps))
    _section("2. Simulation: the seed world")
    result = simulate(load_world("seed"), DEMO_POLICIES, n_customers=args.customers, n_days=args.days,
                      seeds=range(args.seeds), out_dir=state_dir / "demo-run", n_jobs=min(2, args.seeds))
    print(format_table(result))
    print(f"\nplots: {', '.join(os.path.relpath(p) for p in result.plots)}")
    print(lift_table(args.customers, max(args.days, LIFT_MIN_DAYS), state_dir))
    _section("3. MLflow: track every run, promote the champion")
    champion = track_and_promote(result, tracking)
    print(f"\nlook at the runs, their per-day curves and plots, and the registered model:\n"
          f"  .venv/bin/mlflow ui --backend-store-uri {shown_uri}\n  then open http://127.0.0.1:5000")
    _section("4. Serving: the champion answers over HTTP")
    serve_and_call(state_dir, tracking, champion)
    print("\nserver stopped; the demo is done.")
    return 0


def lift_table(n_customers: int, n_days: int, state_dir: Path) -> str:
    """hier_ts against a 10% holdout and the playbook (45% each), one seed, and the lift report of its log."""
    path = state_dir / "demo-lift.parquet"
    simulate(load_world("seed"), ["hier_ts"], n_customers=n_customers, n_days=n_days, progress=False,
             log_decisions=path, experiment=LIFT_EXPERIMENT)
    report = lift_report(read_logs(path), LIFT_EXPERIMENT.assignment.shares)
    return (f"\nthe lift, hier_ts as an experiment ({n_customers:,} customers x {n_days} days, seed 0; "
            f"`sendwise lift --logs {os.path.relpath(path)} --holdout-share 0.1 --baseline-share 0.45` "
            f"for every metric):\n{format_report(report, metrics=('value',))}")


def engine_table(steps: int) -> str:
    """Regret, reward and speed of per-segment TS and uniform random on the reference cases."""
    lines = [f"{'case':36} {'policy':7} {'decisions':>10} {'regret':>10} {'reward':>9} {'decisions/s':>12}"]
    for title, rates in (("context-free, 168 arms", bandit_runs.reference_rates(1)),
                         ("contextual, 16 segments x 168 arms", bandit_runs.reference_rates())):
        bandit_runs.run_bandit("ts", rates, 1_000, seed=1)  # compile (or load the cache) before timing
        for policy in ("ts", "random"):
            r = bandit_runs.run_bandit(policy, rates, steps, run=0, seed=0)
            lines.append(f"{title:36} {policy:7} {r.n_steps:>10,} {r.regret:>10,.1f} {r.reward:>9,.0f} "
                         f"{r.decisions_per_s:>12,.0f}")
    return "\n".join(lines)


def track_and_promote(result: object, tracking_uri: str) -> str:
    """Log the simulation, register the best learning policy's best run and point ``champion`` at it."""
    from sendwise.models.mlops.compare import compare_latest
    from sendwise.models.mlops.registry import promote
    from sendwise.models.mlops.tracking import log_simulation, world_experiment

    parent = log_simulation(result, tracking_uri=tracking_uri)
    (comparison,) = compare_latest(experiment=world_experiment("seed"), tracking_uri=tracking_uri)
    learners = [p for p in comparison.policies() if p not in ORACLES and p in comparison.best_runs]
    best = learners[0]
    promotion = promote(run_id=comparison.best_runs[best], tracking_uri=tracking_uri)
    print(f"tracked parent run {parent} with {len(comparison.best_runs)} promotable policies")
    print(f"best learning policy by net value: {best}; registered as {promotion.name} version "
          f"{promotion.version}, alias @{promotion.alias} ({promotion.reason})")
    return str(ModelUri(promotion.name, alias=promotion.alias))


def serve_and_call(state_dir: Path, tracking_uri: str, model_uri: str) -> None:
    """Start ``sendwise serve`` on a free loopback port, decide, post feedback, print, stop."""
    from sendwise.server import serve_in_background  # the server's imports only when the demo gets here

    api_key = secrets.token_urlsafe(24)
    settings = {"model_uri": model_uri, "api_keys": api_key, "state_dir": state_dir / "demo-server"}
    with (serve_in_background(settings, env={"MLFLOW_TRACKING_URI": tracking_uri},
                              log=state_dir / "demo-server.log") as server,
          httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as client):
        print(f"server on {server.url} (model {model_uri}, {server.ready['status']})")
        decisions = _post(client, "/v1/decisions", {"customers": list(DEMO_CUSTOMERS)})["decisions"]
        for d in decisions:
            when = d["send_at"] or "-"
            print(f"  {d['customer_id']:11} -> {d['channel']:9} local {d['local_hour']!s:>4}h  send_at {when}  "
                  f"propensity {d['propensity']:.3f}  {d['reason']['mode']}  model {d['model_version']}")
        now = datetime.now(UTC).isoformat()
        events = [{"event_id": str(uuid4()), "decision_id": d["decision_id"], "type": kind, "timestamp": now}
                  for d, kind in zip(decisions, ("clicked", "unsubscribed", "delivered"), strict=True)
                  if d["channel"] != "none"]
        if events:
            results = _post(client, "/v1/feedback", {"events": events})["results"]
            again = _post(client, "/v1/feedback", {"events": events[:1]})["results"]
            print(f"feedback: {[(e['type'], r['status']) for e, r in zip(events, results, strict=True)]}; "
                  f"the same event again -> {again[0]['status']}")
        show_served_learning(client)
        counters = [line for line in client.get("/metrics").text.splitlines()
                    if line.startswith("sendwise_decisions_total")]
        print("metrics: " + "; ".join(counters))


LEARNING_SEGMENT = ("NA", "ecommerce", "cart_reminder")


def show_served_learning(client: httpx.Client, n_customers: int = 200) -> None:
    """The served loop learning: a segment's decisions, a click on every message of the channel the model
    sent least, and what the server makes of it.

    Every message the server plans is an open message of its learning loop at once (a provisional
    failure until its window closes); the clicks count as they arrive, so the clicked channel's value
    rises while the unclicked messages wait for their windows.
    """
    region, industry, campaign = LEARNING_SEGMENT
    path = f"/v1/segments/{region}/{industry}/{campaign}/posterior"

    def ask(prefix: str) -> list[dict]:
        people = [{"customer_id": f"{prefix}-{i}", "timezone": "America/New_York", "region": region,
                   "industry": industry, "campaign_type": campaign, "channels": ["email", "push", "in_app"]}
                  for i in range(n_customers)]
        return client.post("/v1/decisions", json={"customers": people}).json()["decisions"]

    def mix(decisions: list[dict]) -> str:
        counts = Counter(d["channel"] for d in decisions)
        return ", ".join(f"{channel} {n}" for channel, n in counts.most_common())

    def value_at(channel: str, hour: int) -> str:
        response = client.get(path)
        if response.status_code != 200:  # e.g. a champion without a Beta posterior (static, user_heuristic)
            return f"not shown ({response.json()['detail']})"
        cell = next(c for c in response.json()["cells"] if c["channel"] == channel and c["hour"] == hour)
        return f"{cell['net_value']:+.3f}"

    first = ask("learn-a")
    print(f"served loop, {n_customers} {region} {industry} {campaign} customers -> {mix(first)}")
    sent = Counter(d["channel"] for d in first if d["channel"] != "none")
    if not sent:
        print("  no message was sent, so there is nothing to click")
        return
    channel = min(sent, key=lambda c: (sent[c], c))  # the channel the model sent least: the shift shows most
    clicked = [d for d in first if d["channel"] == channel]
    hour = Counter(d["local_hour"] for d in clicked).most_common(1)[0][0]
    before = value_at(channel, hour)
    now = datetime.now(UTC).isoformat()
    client.post("/v1/feedback", json={"events": [
        {"event_id": str(uuid4()), "decision_id": d["decision_id"], "type": "clicked", "timestamp": now}
        for d in clicked]})
    print(f"  posted a click on each of its {len(clicked)} {channel} message(s); {channel} at {hour}h, posterior "
          f"mean net value: {before} -> {value_at(channel, hour)}")
    print(f"  the next {n_customers} customers -> {mix(ask('learn-b'))}")


def _post(client: httpx.Client, path: str, body: dict) -> dict:
    response = client.post(path, json=body)
    if response.status_code >= 400:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text}")
    payload = response.json()
    print(f"POST {path} -> {response.status_code}, {len(json.dumps(payload))} bytes")
    return payload


def _section(title: str) -> None:
    print(f"\n=== {title}\n")
