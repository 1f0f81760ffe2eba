"""docker-py against `sandrun serve`: put_archive into a running container and get_archive out
of it (a tar stream and the path's stat)."""
import io
import sys
import tarfile

import docker

client = docker.DockerClient(base_url="unix://" + sys.argv[1])
c = client.containers.run("busybox", ["sleep", "60203"], detach=True, name="pyarchive")

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tar:
    data = b"put by docker-py\n"
    info = tarfile.TarInfo("hello.txt")
    info.size = len(data)
    info.mode = 0o640
    tar.addfile(info, io.BytesIO(data))
assert c.put_archive("/tmp", buf.getvalue()) is True
r = c.exec_run(["cat", "/tmp/hello.txt"])
assert r.output == b"put by docker-py\n", r.output

c.exec_run(["sh", "-c", "mkdir -p /srv/out && echo one > /srv/out/a && echo two > /srv/out/b"])
stream, stat = c.get_archive("/srv/out")
assert stat["name"] == "out", stat
assert stat["mode"] & 0o20000000000, stat  # a directory (Go's os.ModeDir)
with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
    names = sorted(tar.getnames())
    assert names == ["out", "out/a", "out/b"], names
    assert tar.extractfile("out/b").read() == b"two\n"

stream, stat = c.get_archive("/tmp/hello.txt")
assert stat["name"] == "hello.txt" and stat["size"] == 17, stat
with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
    assert tar.getnames() == ["hello.txt"]
    assert tar.getmember("hello.txt").mode == 0o640

try:
    c.get_archive("/no/such/path")
    raise AssertionError("no NotFound")
except docker.errors.NotFound as e:
    assert "Could not find the file /no/such/path in container pyarchive" in str(e), str(e)

c.remove(force=True)
print("ok")
