"""docker-py against `sandrun serve`: a network created with labels, containers connected to it
(at create and with connect, with aliases) reaching each other by name and alias, listed by the
network filter; a named volume whose data outlives a container."""
import sys

import docker

client = docker.DockerClient(base_url="unix://" + sys.argv[1])

net = client.networks.create("pynet", labels={"suite": "py"})
assert [n.name for n in client.networks.list(filters={"label": "suite=py"})] == ["pynet"]
server = client.containers.run(
    "busybox", ["sh", "-c", "mkdir /tmp/w && echo served > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"],
    detach=True, name="pyserver", network="pynet")
other = client.containers.run(
    "busybox", ["sh", "-c", "mkdir /tmp/w && echo other > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"],
    detach=True, name="pyother")
net.connect(other, aliases=["client-alias"])
net.reload()
assert sorted(c.name for c in net.containers) == ["pyother", "pyserver"], net.containers
assert sorted(c.name for c in client.containers.list(filters={"network": "pynet"})) == ["pyother", "pyserver"]

r = other.exec_run(["sh", "-c", "for i in $(seq 50); do wget -q -O - http://pyserver/index.html && exit 0; sleep 0.1; done; exit 1"])
assert r.output == b"served\n", r
# By its alias, over TCP (busybox's ping wants a raw socket, which a network the daemon made
# does not give a container's root: docs/api.md).
r = server.exec_run(["sh", "-c", "for i in $(seq 50); do wget -q -O - http://client-alias/index.html && exit 0; sleep 0.1; done; exit 1"])
assert r.output == b"other\n", r

other.reload()
assert other.attrs["NetworkSettings"]["Networks"]["pynet"]["Aliases"][:1] == ["client-alias"], other.attrs["NetworkSettings"]
net.disconnect(other)
assert [c.name for c in client.containers.list(filters={"network": "pynet"})] == ["pyserver"]
server.remove(force=True)
other.remove(force=True)
net.remove()
assert client.networks.list(filters={"label": "suite=py"}) == []

vol = client.volumes.create("pydata", labels={"suite": "py"})
client.containers.run("busybox", ["sh", "-c", "echo kept > /data/f"], volumes={"pydata": {"bind": "/data", "mode": "rw"}}, remove=True)
out = client.containers.run("busybox", ["cat", "/data/f"], volumes=["pydata:/data:ro"], remove=True)
assert out == b"kept\n", out
assert [v.name for v in client.volumes.list(filters={"label": "suite=py"})] == ["pydata"]
vol.remove()
assert client.volumes.list() == []
print("ok")
