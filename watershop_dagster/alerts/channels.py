"""The channels an alert goes out on: a sender per channel raises on failure, returns on success.

Webhook: POST the payload as JSON (a non-2xx answer is a failure). MQTT: publish the payload at
QoS 1 to <mqtt_topic>/<rule> and wait for the broker's acknowledgement (live: through the
listener's own client; otherwise a short connection to `alerts.mqtt` or Frigate's broker). E-mail:
one message per alert over SMTP."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable
from email.message import EmailMessage

import requests

from watershop_dagster.alerts.model import Alert
from watershop_dagster.config import AlertsConfig, MqttBrokerConfig, SmtpConfig, WatershopConfig

WEBHOOK, MQTT, EMAIL = "webhook", "mqtt", "email"
LOG = "log"  # the pseudo-channel of an alert with no channel configured: logged only
MQTT_ACK_SECONDS = 5

Sender = Callable[[Alert], None]
#: a connected paho client's `publish` (thread-safe)
Publish = Callable[..., object]


def webhook_sender(url: str, timeout: float) -> Sender:
    def send(alert: Alert) -> None:
        requests.post(url, json=alert.payload(), timeout=timeout).raise_for_status()
    return send


def mqtt_sender(publish: Publish, topic: str) -> Sender:
    def send(alert: Alert) -> None:
        info = publish(f"{topic}/{alert.rule}", json.dumps(alert.payload()), qos=1)
        info.wait_for_publish(timeout=MQTT_ACK_SECONDS)
        if not info.is_published():
            raise TimeoutError("broker did not acknowledge the alert")
    return send


def mqtt_connection_sender(broker: MqttBrokerConfig, topic: str, timeout: float) -> Sender:
    """For runs outside `listen`: one short connection per alert (a run raises few)."""
    import uuid

    import paho.mqtt.client as mqtt

    def send(alert: Alert) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watershop-alerts-{uuid.uuid4().hex[:8]}")
        if broker.username:
            client.username_pw_set(broker.username, broker.password)
        client.connect(broker.host, broker.port, keepalive=max(5, int(timeout)))
        client.loop_start()
        try:
            mqtt_sender(client.publish, topic)(alert)
        finally:
            client.disconnect()
            client.loop_stop()
    return send


def email_sender(smtp: SmtpConfig) -> Sender:
    def send(alert: Alert) -> None:
        message = EmailMessage()
        message["From"], message["To"] = smtp.sender, ", ".join(smtp.recipients)
        message["Subject"] = f"Watershop alert: {alert.text()}"
        message.set_content(json.dumps(alert.payload(), indent=2, default=str))
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
    return send


def alert_broker(config: WatershopConfig) -> MqttBrokerConfig | None:
    """The broker of the mqtt channel: `alerts.mqtt`, else Frigate's, else none (channel off)."""
    if config.alerts.mqtt is not None:
        return config.alerts.mqtt
    if config.frigate is not None:
        section = config.frigate
        return MqttBrokerConfig(host=section.mqtt_host, port=section.mqtt_port, username=section.username,
                                password=section.password)
    return None


def configured_senders(config: WatershopConfig, publish: Publish | None = None) -> dict[str, Sender]:
    """The senders of every configured channel; `publish`: an already connected client's (live)."""
    alerts: AlertsConfig = config.alerts
    senders: dict[str, Sender] = {}
    if alerts.webhook_url:
        senders[WEBHOOK] = webhook_sender(alerts.webhook_url, alerts.timeout_seconds)
    if publish is not None:
        senders[MQTT] = mqtt_sender(publish, alerts.mqtt_topic)
    elif (broker := alert_broker(config)) is not None:
        senders[MQTT] = mqtt_connection_sender(broker, alerts.mqtt_topic, alerts.timeout_seconds)
    if alerts.smtp is not None:
        senders[EMAIL] = email_sender(alerts.smtp)
    return senders
