// `sandrun serve` pulls from a real registry on 127.0.0.1 (tests/support/registry_server.h),
// through /usr/bin/docker (20.10, API 1.41) and docker-py. Its own small daemon fixture: the
// registry's helpers and tests/api/api_client.h both name an HttpReply.
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "tests/cache/registry_images.h"

namespace sandrun::testing {
namespace {

class ServePull : public ::testing::Test {
 protected:
  void SetUp() override {
    SANDRUN_REQUIRE_ROOT();
    std::string why;
    SANDRUN_REQUIRE(RegistryServer::available(&why), why);
    std::string err;
    reg_ = RegistryServer::start({}, &err);
    ASSERT_TRUE(reg_) << err;
    ASSERT_EQ(reg_->push(images_.dir.path(), "app", "team/app:1"), "");
    ::mkdir((tmp_ / "docker-config").c_str(), 0700);
    daemon_ = std::make_unique<Background>(
        std::vector<std::string>{sandrun_bin(), "--root", root(), "serve", "--socket", socket()});
    ASSERT_TRUE(eventually([&] { return http("GET", "/_ping").second == "OK"; }, kStartTimeout));
  }
  void TearDown() override {
    if (!daemon_) return;
    daemon_->signal(SIGTERM);
    CommandResult r = daemon_->finish();
    EXPECT_EQ(r.status, 0) << r.err;
    // Nothing left: no work in progress in the cache, no mount under the root.
    EXPECT_EQ(run_command({"find", root() + "/tmp", "-mindepth", "1"}).out, "");
    EXPECT_EQ(read_file("/proc/self/mountinfo").find(root()), std::string::npos);
  }
  std::string root() const { return tmp_ / "root"; }
  std::string socket() const { return tmp_ / "sandrun.sock"; }
  // curl over the socket: the status and the body.
  std::pair<int, std::string> http(const std::string& method, const std::string& path) {
    auto r = run_command({"curl", "-s", "-X", method, "--unix-socket", socket(), "-w", "\n%{http_code}",
                          "http://docker" + path});
    const size_t nl = r.out.rfind('\n');
    if (nl == std::string::npos) return {0, ""};
    return {std::atoi(r.out.substr(nl + 1).c_str()), r.out.substr(0, nl)};
  }
  CommandResult docker(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/docker"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, {"DOCKER_HOST=unix://" + socket(), "DOCKER_CONFIG=" + std::string(tmp_ / "docker-config"),
                              "DOCKER_CONTEXT="});
  }

  TestImages images_;
  TempDir tmp_;
  std::unique_ptr<RegistryServer> reg_;
  std::unique_ptr<Background> daemon_;
};

TEST_F(ServePull, DockerPullsWithDockersProgressThenListsTheImage) {
  SANDRUN_REQUIRE(::access("/usr/bin/docker", X_OK) == 0, "needs Debian's docker CLI (/usr/bin/docker)");
  const std::string ref = reg_->host() + "/team/app:1";
  auto r = docker({"pull", ref});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1: Pulling from team/app"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": Pulling fs layer"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": Download complete"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": Pull complete"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Digest: " + images_.app.digest), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Status: Downloaded newer image for " + ref), std::string::npos) << r.out;
  r = docker({"images", "--format", "{{.Repository}}:{{.Tag}}"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, ref + "\n");
  // The pull is in the daemon's events.
  auto events = http("GET", "/v1.41/events?since=0&until=" + std::to_string(::time(nullptr) + 1));
  EXPECT_NE(events.second.find("\"Action\":\"pull\",\"Actor\":{\"Attributes\":{\"name\":\"" + ref + "\"},\"ID\":\"" + ref + "\"}"),
            std::string::npos) << events.second;
  // Again: the cache has that manifest.
  r = docker({"pull", ref});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Status: Image is up to date for " + ref), std::string::npos) << r.out;
  // The answer is streamed (chunked) from the manifest on, as the pull goes.
  auto head = run_command({"curl", "-si", "-X", "POST", "--unix-socket", socket(),
                           "http://docker/v1.41/images/create?fromImage=" + reg_->host() + "/team/app&tag=1"});
  EXPECT_NE(head.out.find("Transfer-Encoding: chunked"), std::string::npos) << head.out;
  EXPECT_NE(head.out.find("{\"status\":\"Status: Image is up to date for " + ref + "\"}"), std::string::npos) << head.out;
  // A tag the registry does not have: 404 before any progress, in the registry's words.
  auto [status, body] = http("POST", "/v1.41/images/create?fromImage=" + reg_->host() + "/team/app&tag=nope");
  EXPECT_EQ(status, 404) << body;
  EXPECT_NE(body.find("/v2/team/app/manifests/nope: 404 Not Found"), std::string::npos) << body;
  r = docker({"pull", reg_->host() + "/team/nothing:1"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("Error response from daemon: pull " + reg_->host() + "/team/nothing:1"), std::string::npos)
      << r.err;
  // Without a registry host: sandrun has no default registry.
  std::tie(status, body) = http("POST", "/v1.41/images/create?fromImage=alpine&tag=3");
  EXPECT_EQ(status, 404) << body;
  EXPECT_NE(body.find("sandrun has no default registry"), std::string::npos) << body;
}

TEST_F(ServePull, AFailureAfterTheManifestIsAnErrorInTheStream) {
  // A layer blob the registry now serves with other bytes (same size).
  const std::string digest = cache::sha256_of(images_.layers[1].bytes);
  std::string data = read_file(reg_->blob_data_path(digest));
  data[data.size() / 2] ^= 0x5a;
  write_file(reg_->blob_data_path(digest), data);
  auto [status, body] = http("POST", "/v1.41/images/create?fromImage=" + reg_->host() + "/team/app&tag=1");
  EXPECT_EQ(status, 200) << body;
  EXPECT_TRUE(body.starts_with("{\"id\":\"1\",\"progressDetail\":{},\"status\":\"Pulling from team/app\"}\r\n")) << body;
  const std::string last = body.substr(body.rfind("\r\n", body.size() - 3) + 2);
  EXPECT_TRUE(last.starts_with("{\"error\":\"import " + reg_->host() + "/team/app:1: pull ")) << last;
  EXPECT_NE(last.find("\"errorDetail\":{\"message\":"), std::string::npos) << last;
  EXPECT_NE(last.find("digest mismatch"), std::string::npos) << last;
  EXPECT_EQ(body.find("Status: Downloaded"), std::string::npos) << body;
  // Nothing was committed.
  EXPECT_EQ(http("GET", "/v1.41/images/json").second, "[]\n");
}

TEST_F(ServePull, DockerPyPullsImagesAndManagesVolumes) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  const std::string script =
      "import docker\n"
      "c = docker.DockerClient(base_url='unix://" + socket() + "')\n"
      "img = c.images.pull('" + reg_->host() + "/team/app', tag='1')\n"
      "print(img.tags, img.id == c.images.get('" + reg_->host() + "/team/app:1').id)\n"
      "print(len(c.images.list()))\n"
      "v = c.volumes.create('pyvol', labels={'k': 'v'})\n"
      "print(v.name, v.attrs['Labels'], [x.name for x in c.volumes.list()])\n"
      "v.remove()\n"
      "print([x.name for x in c.volumes.list()])\n"
      "try:\n"
      "    c.volumes.get('pyvol')\n"
      "except docker.errors.NotFound:\n"
      "    print('NotFound')\n";
  auto r = run_command({"python3", "-c", script});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "['" + reg_->host() + "/team/app:1'] True\n1\npyvol {'k': 'v'} ['pyvol']\n[]\nNotFound\n");
}

TEST_F(ServePull, XRegistryAuthGivesThePullsCredentials) {
  SANDRUN_REQUIRE(run_command({"python3", "-c", "import docker"}).status == 0, "needs python3-docker");
  std::string err;
  auto locked = RegistryServer::start({.auth = RegistryServer::Auth::htpasswd}, &err);
  ASSERT_TRUE(locked) << err;
  ASSERT_EQ(locked->push(images_.dir.path(), "app", "team/private:1"), "");
  const std::string repo = locked->host() + "/team/private";
  const std::string script =
      "import docker\n"
      "c = docker.DockerClient(base_url='unix://" + socket() + "')\n"
      "for auth in [None, {'username': 'sandrun', 'password': 'wrong'}]:\n"
      "    try:\n"
      "        c.images.pull('" + repo + "', tag='1', auth_config=auth)\n"
      "        print('pulled?')\n"
      "    except docker.errors.APIError as e:\n"
      "        print(e.status_code, 'refused' if '401 Unauthorized' in str(e) else str(e))\n"
      "img = c.images.pull('" + repo + "', tag='1', auth_config={'username': 'sandrun', 'password': 'pull-secret'})\n"
      "print(img.tags)\n";
  auto r = run_command({"python3", "-c", script});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "500 refused\n500 refused\n['" + repo + ":1']\n");
  // The credentials were used for that pull only: they are nowhere under the root.
  EXPECT_EQ(run_command({"grep", "-rl", "pull-secret", root()}).out, "");
}

}  // namespace
}  // namespace sandrun::testing
