"""Frigate live path on this machine, through the real loopback Mosquitto and a real `watershop
frigate listen` process:

  latency     a known person's message published -> alert received on each channel (MQTT
              subscriber, webhook HTTP server, aiosmtpd SMTP server); p50 / p95 / max over --alerts
  throughput  --messages event messages of 8 cameras published as fast as paho can (QoS 1), then
              20 s paced at --rate msg/s, each into a fresh listener: messages/s landed (fsync'd
              batches), messages the broker dropped, the listener's peak RSS

    .venv/bin/python bench/bench_frigate_alerts.py [--alerts 40] [--messages 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import paho.mqtt.client as mqtt  # noqa: E402

from tests.frigate_helpers import (  # noqa: E402
    BROKER,
    ListenerProcess,
    SmtpSink,
    WebhookSink,
    broker_up,
    frigate_workspace,
    publish_all,
    publisher,
)
from watershop_dagster.frigate.simulate import ScriptedPerson, person_messages, supermarket_replay  # noqa: E402

CAMERAS_8 = {f"cam{n}": ["entrance", "aisle_a", "aisle_b", "checkout"] for n in range(1, 9)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_latency(root: Path, alerts: int) -> None:
    webhook, smtp = WebhookSink(), SmtpSink()
    topic = f"bench-{uuid.uuid4().hex[:8]}/alerts"
    config, prefix = frigate_workspace(root)
    config.write_text(config.read_text().replace("alerts:\n", (
        f"alerts:\n  webhook_url: {webhook.url}\n  mqtt_topic: {topic}\n"
        f"  smtp: {{port: {smtp.port}, recipients: [owner@shop.test]}}\n"
        "  rules:\n    - {name: known, kind: known_person, cooldown_seconds: 0, channels: [webhook, mqtt, email]}\n"), 1))
    (root / "known_people" / "vip" / "alice").mkdir(parents=True)
    arrivals: dict[str, dict[str, float]] = {"mqtt": {}, "webhook": {}, "email": {}}
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}")
    watcher.on_message = lambda c, u, m: arrivals["mqtt"].setdefault(json.loads(m.payload)["event_id"], time.time())
    watcher.connect(*BROKER)
    watcher.subscribe(f"{topic}/#", qos=1)
    watcher.loop_start()
    listener = ListenerProcess(config)
    client = publisher()
    sent: dict[str, float] = {}
    try:
        for n in range(alerts):
            event_id = f"bench-{n}"
            payload = person_messages(ScriptedPerson("door", time.time(), [(None, 1)], "alice", event_id),
                                      random.Random(n))[0][0]
            sent[event_id] = time.time()
            client.publish(f"{prefix}/events", payload, qos=1)
            time.sleep(0.25)
        deadline = time.time() + 30
        while time.time() < deadline and (len(webhook.received) < alerts or len(smtp.received) < alerts
                                          or len(arrivals["mqtt"]) < alerts):
            time.sleep(0.05)
        for at, body in webhook.received:
            arrivals["webhook"][body["event_id"]] = at
        for at, text in smtp.received:
            event_id = next(word for word in text.replace('"', " ").split() if word.startswith("bench-"))
            arrivals["email"][event_id] = at
    finally:
        client.disconnect()
        listener.terminate()
        watcher.loop_stop()
        webhook.close()
        smtp.close()
    print(f"alert latency, message published -> alert received ({alerts} alerts, 1 every 0.25 s):")
    for channel, seen in arrivals.items():
        latencies = [(seen[e] - sent[e]) * 1000 for e in sent if e in seen]
        if not latencies:
            print(f"  {channel:8} no alert arrived")
            continue
        print(f"  {channel:8} delivered {len(latencies)}/{alerts}  p50 {statistics.median(latencies):6.1f} ms  "
              f"p95 {percentile(latencies, 0.95):6.1f} ms  max {max(latencies):6.1f} ms")


def _landed(landing: Path) -> int:
    return sum(sum(1 for _ in path.open()) for path in landing.glob("cam*/*.ndjson"))


def bench_throughput(root: Path, messages: int, rate: float) -> None:
    """A burst (as fast as paho publishes) and a paced stream at `rate` msg/s, each into a fresh listener."""
    from watershop_dagster.config import init_workspace

    replay = supermarket_replay(CAMERAS_8, time.time() - 3600, people=messages // 8, seed=20_000)
    payloads = replay.messages[:messages]
    for mode in ("burst", "paced"):
        workspace = root / mode
        init_workspace(workspace, shop_id="s1", timezone="UTC", cameras=list(CAMERAS_8))
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        config = workspace / "watershop.yaml"
        config.write_text(config.read_text().replace("alerts:\n", "alerts:\n  rules: []\n", 1)
                          + f"\nfrigate:\n  topic_prefix: {prefix}\n  client_id: bench-{prefix}\n")
        sample = payloads if mode == "burst" else payloads[:int(rate * 20)]
        listener = ListenerProcess(config)
        client = publisher()
        landing = workspace / "landing" / "frigate" / "s1"
        try:
            started = time.perf_counter()
            if mode == "burst":
                publish_all(client, f"{prefix}/events", sample)
            else:
                for n, payload in enumerate(sample):
                    client.publish(f"{prefix}/events", payload, qos=1)
                    time.sleep(max(0.0, started + (n + 1) / rate - time.perf_counter()))
            published = time.perf_counter() - started
            last, last_growth = -1, time.perf_counter()
            while time.perf_counter() - last_growth < 3:  # until nothing more lands for 3 s
                landed = _landed(landing)
                if landed != last:
                    last, last_growth = landed, time.perf_counter()
                if landed >= len(sample):
                    break
                time.sleep(0.05)
            elapsed = last_growth - started
            peak = rss_mb(listener.proc.pid)
        finally:
            client.disconnect()
            listener.terminate()
        print(f"{mode:5}: {len(sample)} messages of 8 cameras published in {published:.1f} s; {last} landed in "
              f"{elapsed:.1f} s ({last / elapsed:,.0f} msg/s), {len(sample) - last} dropped; listener peak RSS {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=40)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=400.0, help="msg/s of the paced stream (20 s of it)")
    args = parser.parse_args()
    if not broker_up():
        sys.exit("no MQTT broker on 127.0.0.1:1883")
    with tempfile.TemporaryDirectory() as root:
        bench_latency(Path(root) / "latency", args.alerts)
        bench_throughput(Path(root) / "throughput", args.messages, args.rate)


if __name__ == "__main__":
    main()
