"""The hub role: the park rebuilt from what edges publish over MQTT (see runtime.py)."""
