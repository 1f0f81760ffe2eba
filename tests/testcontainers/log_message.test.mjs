// testcontainers for Node against `sandrun serve`: a GenericContainer of the built-in busybox
// (never pulled: it exists) waited for with Wait.forLogMessage, its logs and its removal.
import assert from "node:assert/strict";
import { GenericContainer, Wait } from "testcontainers";

const container = await new GenericContainer("busybox")
  .withCommand(["sh", "-c", "echo starting; sleep 0.5; echo server ready; echo ok >&2; exec sleep 60123"])
  .withLabels({ suite: "testcontainers" })
  .withWaitStrategy(Wait.forLogMessage("server ready"))
  .withStartupTimeout(60_000)
  .start();

const logs = [];
const stream = await container.logs();
stream.on("data", (line) => logs.push(line.toString()));
await new Promise((resolve) => setTimeout(resolve, 300));
assert.ok(logs.join("").includes("starting\n"), `logs: ${JSON.stringify(logs)}`);
assert.ok(logs.join("").includes("server ready\n"), `logs: ${JSON.stringify(logs)}`);
stream.destroy();

assert.match(container.getId(), /^[0-9a-f]{64}$/);
assert.match(container.getName(), /^\/[a-z]/);
assert.equal(container.getLabels().suite, "testcontainers");

// A message that never comes fails the start within its timeout, naming it.
await assert.rejects(
  new GenericContainer("busybox")
    .withCommand(["sleep", "60123"])
    .withWaitStrategy(Wait.forLogMessage("never printed"))
    .withStartupTimeout(1_500)
    .start(),
  /Log message "never printed" not received after 1500ms/,
);

const stopped = await container.stop();
assert.ok(stopped);
console.log("log message: ok");
