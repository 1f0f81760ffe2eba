// testcontainers for Node against `sandrun serve`: withHealthCheck and Wait.forHealthCheck
// (the daemon runs the check as an exec into the container, health_status in its events).
import assert from "node:assert/strict";
import { GenericContainer, Wait } from "testcontainers";

const container = await new GenericContainer("busybox")
  .withCommand(["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 60125"])
  .withHealthCheck({ test: ["CMD-SHELL", "test -f /tmp/ready"], interval: 300, timeout: 2_000, retries: 20 })
  .withWaitStrategy(Wait.forHealthCheck())
  .withStartupTimeout(60_000)
  .start();

// A check that never passes: the container turns unhealthy and the start fails, saying so.
await assert.rejects(
  new GenericContainer("busybox")
    .withCommand(["sleep", "60125"])
    .withHealthCheck({ test: ["CMD", "false"], interval: 200, timeout: 1_000, retries: 2 })
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(30_000)
    .start(),
  /Health check failed: unhealthy/,
);

await container.stop();
console.log("health check: ok");
