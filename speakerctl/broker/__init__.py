"""The only code that imports MQTT clients: the link, the embedded broker, broker configuration."""
