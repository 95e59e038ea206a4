"""Frigate NVR as a source: import its cameras and zones (config_import), land its MQTT messages
(listener, landing) and API events (pull), build the behaviour datasets from them (events), and
raise live alerts (alerts). `simulate` writes the messages Frigate would publish, with ground truth."""
