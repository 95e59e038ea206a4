"""Alert delivery shared by every producer: `frigate listen` (live), the recordings path (after each
shop-day or camera-day run) and the shelf segments (near-live).

`model` (the Alert record and the per-rule cooldown), `channels` (webhook, MQTT, e-mail senders),
`log` (the durable delivery log in the lake, `recent_alerts` for the dashboard), `delivery` (one
attempt per channel, retries with exponential back-off, synchronous or on per-channel threads) and
`rules` (the rules evaluated over the lake's datasets for recordings-only shops).
"""
