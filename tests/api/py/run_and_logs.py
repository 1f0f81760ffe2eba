"""docker-py against `sandrun serve`: containers.run attached and detached, ContainerError with
the container's stderr, wait, logs(stream=True) and containers.list filters."""
import sys

import docker

client = docker.DockerClient(base_url="unix://" + sys.argv[1])

# Attached: the output is returned, stdout only by default, both with stderr=True.
out = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True)
assert out == b"out\n", out
out = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stdout=False, stderr=True)
assert out == b"err\n", out

# A non-zero exit is a ContainerError carrying the exit status and the container's stderr.
try:
    client.containers.run("busybox", ["sh", "-c", "echo failing >&2; exit 5"], remove=True)
    raise AssertionError("no ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 5, e.exit_status
    assert e.stderr == b"failing\n", e.stderr
    assert "returned non-zero exit status 5: b'failing\\n'" in str(e), str(e)

# Detached: a Container, its logs streamed as they come, wait's status code.
c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; exit 2"],
                          detach=True, name="pyrun", labels={"suite": "py"}, environment={"A": "1"})
assert c.name == "pyrun", c.name
lines = list(c.logs(stream=True, follow=True))
assert b"".join(lines) == b"line 1\nline 2\nline 3\n", lines
assert c.wait() == {"StatusCode": 2, "Error": None}, c.wait()
c.reload()
assert c.status == "exited", c.status
assert c.attrs["State"]["ExitCode"] == 2
assert "A=1" in c.attrs["Config"]["Env"], c.attrs["Config"]["Env"]
assert c.labels == {"suite": "py"}, c.labels

# wait with a condition on a running container, then its timeout.
s = client.containers.run("busybox", ["sleep", "60201"], detach=True, name="pysleep", labels={"suite": "py"})
assert [x.name for x in client.containers.list(filters={"label": "suite=py"})] == ["pysleep"]
assert sorted(x.name for x in client.containers.list(all=True, filters={"label": "suite=py"})) == ["pyrun", "pysleep"]
assert [x.name for x in client.containers.list(all=True, filters={"status": "exited"})] == ["pyrun"]
assert [x.name for x in client.containers.list(filters={"ancestor": "busybox"})] == ["pysleep"]
assert [x.name for x in client.containers.list(filters={"name": "pysl"})] == ["pysleep"]
assert [x.name for x in client.containers.list(filters={"id": s.id[:12]})] == ["pysleep"]
s.stop(timeout=1)
assert s.wait(condition="not-running")["StatusCode"] == 143
s.remove()
c.remove()
assert client.containers.list(all=True) == []
print("ok")
