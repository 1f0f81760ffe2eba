// testcontainers for Node against `sandrun serve`: files copied in before the start
// (withCopyContentToContainer, withCopyFilesToContainer) and after it (copyContentToContainer),
// read back with container.exec (its output, stderr and exit code apart).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GenericContainer } from "testcontainers";

const dir = mkdtempSync(join(tmpdir(), "tc-copy-"));
writeFileSync(join(dir, "from-file.txt"), "a file from the host\n");

const container = await new GenericContainer("busybox")
  .withCommand(["sleep", "60126"])
  .withCopyContentToContainer([{ content: "copied before the start\n", target: "/etc/app/config.txt" }])
  .withCopyFilesToContainer([{ source: join(dir, "from-file.txt"), target: "/data/from-file.txt", mode: 0o600 }])
  .withStartupTimeout(60_000)
  .start();

let r = await container.exec(["cat", "/etc/app/config.txt", "/data/from-file.txt"]);
assert.equal(r.exitCode, 0, r.output);
assert.equal(r.stdout, "copied before the start\na file from the host\n");
r = await container.exec(["stat", "-c", "%a", "/data/from-file.txt"]);
assert.equal(r.stdout, "600\n");

await container.copyContentToContainer([{ content: "copied while it runs\n", target: "/tmp/later.txt" }]);
r = await container.exec(["sh", "-c", "cat /tmp/later.txt; echo to stderr >&2; exit 3"]);
assert.equal(r.exitCode, 3);
assert.equal(r.stdout, "copied while it runs\n");
assert.equal(r.stderr, "to stderr\n");

// exec with a working directory, environment and user.
r = await container.exec(["sh", "-c", "pwd; echo $GREETING; id -u"], { workingDir: "/etc/app", env: { GREETING: "hi" }, user: "1000" });
assert.equal(r.exitCode, 0, r.output);
assert.equal(r.stdout, "/etc/app\nhi\n1000\n");

await container.stop();
console.log("exec and copy: ok");
