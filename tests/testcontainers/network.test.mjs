// testcontainers for Node against `sandrun serve`: a Network with two containers, the client
// reaching the server by its alias on that network; the network removed with stop().
import assert from "node:assert/strict";
import { GenericContainer, Network, Wait } from "testcontainers";

const network = await new Network().start();
const server = await new GenericContainer("busybox")
  .withNetwork(network)
  .withNetworkAliases("web-server")
  .withCommand(["sh", "-c", "mkdir -p /tmp/www && echo hello by alias > /tmp/www/index.html && echo listening && exec httpd -f -p 8080 -h /tmp/www"])
  .withWaitStrategy(Wait.forLogMessage("listening"))
  .withStartupTimeout(60_000)
  .start();

const client = await new GenericContainer("busybox")
  .withNetwork(network)
  .withCommand(["sh", "-c", "until wget -q -O - http://web-server:8080/index.html; do sleep 0.2; done; exec sleep 60127"])
  .withWaitStrategy(Wait.forLogMessage("hello by alias"))
  .withStartupTimeout(60_000)
  .start();

assert.equal(client.getNetworkNames().length, 1);
assert.equal(client.getNetworkNames()[0], network.getName());
assert.match(server.getIpAddress(network.getName()), /^\d+\.\d+\.\d+\.\d+$/);
assert.notEqual(server.getIpAddress(network.getName()), client.getIpAddress(network.getName()));

await client.stop();
await server.stop();
await network.stop();
console.log("network: ok");
