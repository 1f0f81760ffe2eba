// The daemon's containers without a daemon: names, records, the log's records and bound,
// Docker's words for times and its stream framing.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "runner/api/container_json.h"
#include "runner/engine/container_log.h"
#include "runner/engine/container_record.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using runner::ContainerLog;
using runner::LogQuery;
using runner::LogRecord;

TEST(ContainerNames, FollowDockersRule) {
  EXPECT_TRUE(runner::valid_container_name("db"));
  EXPECT_TRUE(runner::valid_container_name("a_b.c-d9"));
  EXPECT_FALSE(runner::valid_container_name("x"));  // Docker's rule asks for two characters
  EXPECT_FALSE(runner::valid_container_name("-x"));
  EXPECT_FALSE(runner::valid_container_name("a/b"));
  EXPECT_FALSE(runner::valid_container_name("a b"));
  EXPECT_FALSE(runner::valid_container_name(""));
  const std::string id = runner::new_container_id();
  EXPECT_EQ(id.size(), 64u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(id, runner::new_container_id());
  EXPECT_EQ(runner::default_container_name(id), "sandrun_" + id.substr(0, 12));
}

TEST(ContainerRecords, RoundTripThroughTheirFile) {
  TempDir tmp;
  runner::ContainerRecord r;
  r.id = runner::new_container_id();
  r.name = "web";
  r.labels = {{"team", "a"}};
  r.spec.image = "busybox";
  r.spec.command = {"sh", "-c", "echo hi"};
  r.spec.env = {{"A", "1"}};
  r.spec.limits.memory = 8 << 20;
  r.spec.volumes.push_back({"/srv", "/data", true});
  r.spec.network = config::Network::host;
  r.spec.cap_add.push_back({"NET_ADMIN", {}});
  r.status = runner::ContainerStatus::exited;
  r.exit_code = 3;
  r.oom_killed = true;
  r.client = "{\"Config\":{}}";
  ASSERT_TRUE(runner::save_record(tmp.path(), r));
  auto back = runner::load_record(tmp.path());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->name, "web");
  EXPECT_EQ(back->labels, r.labels);
  EXPECT_EQ(back->spec.command, r.spec.command);
  EXPECT_EQ(back->spec.env, r.spec.env);
  EXPECT_EQ(back->spec.limits.memory, r.spec.limits.memory);
  ASSERT_EQ(back->spec.volumes.size(), 1u);
  EXPECT_TRUE(back->spec.volumes[0].readonly);
  EXPECT_EQ(back->spec.network, config::Network::host);
  EXPECT_EQ(config::names_of(back->spec.cap_add), std::vector<std::string>{"NET_ADMIN"});
  EXPECT_EQ(back->status, runner::ContainerStatus::exited);
  EXPECT_EQ(back->exit_code, 3);
  EXPECT_TRUE(back->oom_killed);
  EXPECT_EQ(back->client, r.client);
  auto bad = runner::container_record_from_json("{\"id\":\"../x\"}", "record.json");
  EXPECT_FALSE(bad);
}

TEST(ContainerRecords, ARunningRecordKeepsWhatALiveRestoreNeedsAndOnlyThen) {
  TempDir tmp;
  runner::ContainerRecord r;
  r.id = runner::new_container_id();
  r.name = "kept";
  r.spec.image = "busybox";
  r.spec.command = {"sleep", "47291"};
  r.status = runner::ContainerStatus::running;
  r.pid = 4242;
  r.ports.push_back(runner::PublishedPort{"", 8080, "127.0.0.1", 41000});
  // Without a start time it cannot be adopted: neither it nor its ports are kept.
  ASSERT_TRUE(runner::save_record(tmp.path(), r));
  auto plain = runner::load_record(tmp.path());
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(plain->live.pid_start, 0u);
  EXPECT_TRUE(plain->ports.empty());
  r.live = {123456, "/var/lib/sandrun/slots/3", "live-0badf00d-c77-1"};
  ASSERT_TRUE(runner::save_record(tmp.path(), r));
  auto back = runner::load_record(tmp.path());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->live.pid_start, 123456u);
  EXPECT_EQ(back->live.slot, "/var/lib/sandrun/slots/3");
  EXPECT_EQ(back->live.cgroup, "live-0badf00d-c77-1");
  ASSERT_EQ(back->ports.size(), 1u);
  EXPECT_EQ(back->ports[0].host_ip, "127.0.0.1");
  EXPECT_EQ(back->ports[0].host_port, 41000);
  EXPECT_EQ(back->ports[0].container_port, 8080);
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::vector<LogRecord> all(const std::string& dir, LogQuery q = {}) {
  auto r = runner::read_log(dir, q);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : std::vector<LogRecord>{};
}

TEST(ContainerLogs, KeepLinesWithStreamAndTimeAndReadThemBack) {
  TempDir tmp;
  ContainerLog log(tmp.path(), 1 << 20);
  ASSERT_TRUE(log.open());
  std::vector<LogRecord> seen;
  auto emit = [&](const LogRecord& r) { seen.push_back(r); };
  log.write(1, "one\ntw", 100, emit);
  log.write(2, "err\n", 200, emit);
  log.write(1, "o\nthree", 300, emit);
  log.finish(400, emit);
  log.close();
  ASSERT_EQ(seen.size(), 4u);
  auto recs = all(tmp.path());
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].data, "one\n");
  EXPECT_EQ(recs[0].time_ns, 100);
  EXPECT_EQ(recs[1].stream, 2);
  EXPECT_EQ(recs[1].data, "err\n");
  EXPECT_EQ(recs[2].data, "two\n");
  EXPECT_EQ(recs[3].data, "three");  // the unfinished line at the end
  LogQuery q;
  q.stderr_ = false;
  q.tail = 2;
  recs = all(tmp.path(), q);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].data, "two\n");
  q = {};
  q.since_ns = 200;
  q.until_ns = 300;
  recs = all(tmp.path(), q);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].data, "err\n");
}

TEST(ContainerLogs, StayWithinLogMaxKeepingTheNewest) {
  TempDir tmp;
  const uint64_t max = 64 << 10;
  ContainerLog log(tmp.path(), max);
  ASSERT_TRUE(log.open());
  const std::string line(99, 'x');
  for (int i = 0; i < 5000; ++i) log.write(1, line + "\n", i, [](const LogRecord&) {});
  log.close();
  const uint64_t bytes = file_size(tmp.path() + "/log") + file_size(tmp.path() + "/log.1");
  EXPECT_LE(bytes, max);
  auto recs = all(tmp.path());
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs.back().time_ns, 4999);
  for (size_t i = 1; i < recs.size(); ++i) EXPECT_EQ(recs[i].time_ns, recs[i - 1].time_ns + 1);
}

TEST(ContainerJson, DockersWordsForTimesAndFraming) {
  EXPECT_EQ(runner::api::human_duration(500'000'000), "Less than a second");
  EXPECT_EQ(runner::api::human_duration(1'000'000'000), "1 second");
  EXPECT_EQ(runner::api::human_duration(int64_t{59} * 1'000'000'000), "59 seconds");
  EXPECT_EQ(runner::api::human_duration(int64_t{90} * 1'000'000'000), "About a minute");
  EXPECT_EQ(runner::api::human_duration(int64_t{3600} * 1'000'000'000), "About an hour");
  EXPECT_EQ(runner::api::human_duration(int64_t{3} * 86400 * 1'000'000'000), "3 days");
  EXPECT_EQ(runner::api::rfc3339_nano(0), "0001-01-01T00:00:00Z");
  EXPECT_EQ(runner::api::rfc3339_nano(int64_t{1'700'000'000} * 1'000'000'000 + 5), "2023-11-14T22:13:20.000000005Z");
  const std::string f = runner::api::frame_bytes(2, "hey");
  EXPECT_EQ(f, std::string("\x02\0\0\0\0\0\0\x03hey", 11));
  runner::ContainerRecord r;
  r.status = runner::ContainerStatus::exited;
  r.exit_code = 3;
  r.finished_ns = 0;
  EXPECT_EQ(runner::api::status_text(r, int64_t{5} * 1'000'000'000), "Exited (3) 5 seconds ago");
}

}  // namespace
}  // namespace sandrun::testing
