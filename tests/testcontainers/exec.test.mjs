// testcontainers for Node against `sandrun serve`: container.exec (its output, stderr and exit
// code apart; a working directory, environment and user).
import assert from "node:assert/strict";
import { GenericContainer } from "testcontainers";

const container = await new GenericContainer("busybox").withCommand(["sleep", "60128"]).withStartupTimeout(60_000).start();

let r = await container.exec(["sh", "-c", "echo out; echo to stderr >&2; exit 3"]);
assert.equal(r.exitCode, 3);
assert.equal(r.stdout, "out\n");
assert.equal(r.stderr, "to stderr\n");
assert.equal(r.output, "out\nto stderr\n");

r = await container.exec(["sh", "-c", "pwd; echo $GREETING; id -u"], { workingDir: "/etc", env: { GREETING: "hi" }, user: "1000" });
assert.equal(r.exitCode, 0, r.output);
assert.equal(r.stdout, "/etc\nhi\n1000\n");

await container.stop();
console.log("exec: ok");
