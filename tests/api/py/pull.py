"""docker-py against `sandrun serve`: images.pull from the test registry (argv[2] is its
reference), then a container of that image."""
import sys

import docker

client = docker.DockerClient(base_url="unix://" + sys.argv[1])
ref = sys.argv[2]
repo, tag = ref.rsplit(":", 1)
image = client.images.pull(repo, tag=tag)
assert ref in image.tags, image.tags
assert image.id.startswith("sha256:"), image.id
assert client.images.get(ref).id == image.id
out = client.containers.run(ref, ["cat", "/etc/pulled"], remove=True)
assert out == b"from the registry\n", out
client.images.remove(ref)
assert ref not in [t for i in client.images.list() for t in i.tags]
print("ok")
