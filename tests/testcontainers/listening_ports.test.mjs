// testcontainers for Node against `sandrun serve`: Wait.forListeningPorts on busybox's httpd,
// the mapped port reached from the host.
import assert from "node:assert/strict";
import { GenericContainer, Wait } from "testcontainers";

const container = await new GenericContainer("busybox")
  .withCommand(["sh", "-c", "mkdir -p /tmp/www && echo hello from httpd > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"])
  .withExposedPorts(8080)
  .withWaitStrategy(Wait.forListeningPorts())
  .withStartupTimeout(60_000)
  .start();

const port = container.getMappedPort(8080);
assert.ok(port > 0 && port < 65536, `mapped port ${port}`);
const answer = await fetch(`http://${container.getHost()}:${port}/index.html`);
assert.equal(answer.status, 200);
assert.equal(await answer.text(), "hello from httpd\n");

// A port nobody listens on is never ready.
await assert.rejects(
  new GenericContainer("busybox")
    .withCommand(["sleep", "60124"])
    .withExposedPorts(8081)
    .withWaitStrategy(Wait.forListeningPorts())
    .withStartupTimeout(2_000)
    .start(),
  /Port \S+ not bound after 2000ms/,
);

await container.stop();
console.log("listening ports: ok");
