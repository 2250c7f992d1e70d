"""Helpers of the test tiers alone (servers, Kafka reading and writing, data); what the
benchmarks share with the tests lives in devkit."""
