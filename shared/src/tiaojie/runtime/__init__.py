"""The runtime every Tiaojie service stands on: settings, Kafka and database factories,
reliable consumption, outbox, HTTP conventions, authentication, metrics and PII."""
