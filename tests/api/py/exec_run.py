"""docker-py against `sandrun serve`: exec_run plain, with demux, streamed, with workdir,
environment and user, and its exit codes."""
import sys

import docker

client = docker.DockerClient(base_url="unix://" + sys.argv[1])
c = client.containers.run("busybox", ["sleep", "60202"], detach=True, name="pyexec")

r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
assert r.exit_code == 3, r
assert r.output == b"out\nerr\n", r.output

r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
assert r.exit_code == 0, r
assert r.output == (b"out\n", b"err\n"), r.output

r = c.exec_run(["sh", "-c", "pwd; echo $GREETING; id -u"], workdir="/tmp", environment={"GREETING": "hi"}, user="1000")
assert r.output == b"/tmp\nhi\n1000\n", r.output

# Streamed: the chunks as they come (exit_code is None: docker-py does not inspect a stream).
r = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"], stream=True)
assert r.exit_code is None
assert b"".join(r.output) == b"1\n2\n3\n"
r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], stream=True, demux=True)
chunks = list(r.output)
assert b"".join(o for o, _ in chunks if o) == b"o\n", chunks
assert b"".join(e for _, e in chunks if e) == b"e\n", chunks

# A command that does not exist: 126/127 as Docker's exec says, not a crash.
r = c.exec_run(["/no/such/command"])
assert r.exit_code in (126, 127), r

# The low-level API: exec_inspect after the end.
e = client.api.exec_create(c.id, ["sh", "-c", "exit 4"])
client.api.exec_start(e["Id"])
info = client.api.exec_inspect(e["Id"])
assert info["ExitCode"] == 4 and info["Running"] is False, info

c.remove(force=True)
assert client.containers.list(all=True) == []
print("ok")
