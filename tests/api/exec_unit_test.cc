// Execs and health checks without a daemon: Docker's ExecConfig and Healthcheck read into the
// engine's requests (with the 400s a client reads), Docker's counting of health results, and
// the JSON of exec inspect and State.Health.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runner/api/container_json.h"
#include "runner/api/exec_routes.h"
#include "runner/api/health_json.h"
#include "runner/engine/health.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;
using runner::HealthCheck;
using runner::HealthResult;
using runner::HealthState;
using runner::HealthStatus;
using runner::api::HealthcheckSpec;
using namespace std::chrono_literals;

std::string exec_error(const json& body) {
  auto r = runner::api::read_exec_create(body);
  auto* e = std::get_if<std::string>(&r);
  return e ? *e : "";
}

TEST(ExecCreate, ReadsDockersExecConfig) {
  auto r = runner::api::read_exec_create(json::parse(R"({"Cmd": ["sh", "-c", "id"], "Env": ["A=1", "B"],
      "WorkingDir": "/tmp", "User": "1000:1000", "AttachStdin": true, "AttachStdout": true, "Tty": true,
      "ConsoleSize": [30, 100], "DetachKeys": "ctrl-p,ctrl-q", "Privileged": false})"));
  ASSERT_TRUE(std::holds_alternative<runner::api::ExecCreate>(r)) << std::get<std::string>(r);
  const auto& c = std::get<runner::api::ExecCreate>(r);
  EXPECT_EQ(c.request.argv, (std::vector<std::string>{"sh", "-c", "id"}));
  EXPECT_EQ(c.request.env, (std::vector<std::string>{"A=1"}));  // "B" alone names nothing to set
  EXPECT_EQ(c.request.workdir, "/tmp");
  EXPECT_EQ(c.request.user, "1000:1000");
  EXPECT_TRUE(c.request.stdin_pipe);
  ASSERT_TRUE(c.request.tty);
  EXPECT_EQ(c.request.tty->rows, 30);
  EXPECT_EQ(c.request.tty->cols, 100);
  EXPECT_TRUE(c.attach.stdin_);
  EXPECT_TRUE(c.attach.stdout_);
  EXPECT_FALSE(c.attach.stderr_);
  // A string Cmd is one argument (Docker's strslice).
  auto one = runner::api::read_exec_create(json::parse(R"({"Cmd": "true"})"));
  EXPECT_EQ(std::get<runner::api::ExecCreate>(one).request.argv, std::vector<std::string>{"true"});
  EXPECT_FALSE(std::get<runner::api::ExecCreate>(one).request.tty);
}

TEST(ExecCreate, RefusesWhatDockerRefusesAndPrivileged) {
  EXPECT_EQ(exec_error(json::parse(R"({"Cmd": []})")), "No exec command specified");
  EXPECT_EQ(exec_error(json::parse(R"({})")), "No exec command specified");
  EXPECT_EQ(exec_error(json::parse(R"({"Cmd": ["id"], "Privileged": true})")),
            "Privileged: privileged execs are refused by sandrun (no policy allows them)");
  EXPECT_EQ(exec_error(json::parse(R"({"Cmd": ["id"], "WorkingDir": "tmp"})")),
            "the working directory 'tmp' is invalid, it needs to be an absolute path");
  EXPECT_EQ(exec_error(json::parse(R"({"Cmd": ["id"], "Env": ["=x"]})")), "Env: invalid environment variable: =x");
  EXPECT_EQ(exec_error(json::parse(R"({"Cmd": ["id"], "Tty": "yes"})")), "Tty: expected a boolean");
  EXPECT_EQ(exec_error(json::parse(R"({"Cmd": [1]})")), "Cmd: expected an array of strings");
  EXPECT_EQ(exec_error(json::parse(R"([1])")), "the request body must be a JSON object");
}

TEST(ExecInspect, ShowsDockersFields) {
  runner::ExecRegistry::Exec x;
  x.id = std::string(64, 'a');
  x.container_id = std::string(64, 'b');
  x.request.argv = {"sh", "-c", "exit 3"};
  x.request.user = "nobody";
  const json created = runner::api::exec_inspect_json(x);
  EXPECT_EQ(created["ExitCode"], nullptr);  // null until it has exited
  EXPECT_EQ(created["Running"], false);
  EXPECT_EQ(created["Pid"], 0);
  EXPECT_EQ(created["ProcessConfig"], json::parse(R"({"entrypoint": "sh", "arguments": ["-c", "exit 3"],
      "tty": false, "user": "nobody", "privileged": false})"));
  EXPECT_EQ(created["ContainerID"], x.container_id);
  EXPECT_EQ(created["CanRemove"], false);
  EXPECT_EQ(created["DetachKeys"], "");
  x.state = runner::ExecRegistry::State::exited;
  x.exit_code = 3;
  EXPECT_EQ(runner::api::exec_inspect_json(x)["ExitCode"], 3);
}

HealthcheckSpec health(const std::string& text) {
  auto r = runner::api::parse_healthcheck(json::parse(text));
  if (auto* e = std::get_if<std::string>(&r)) {
    ADD_FAILURE() << *e;
    return {};
  }
  return std::get<HealthcheckSpec>(r);
}

std::string health_error(const std::string& text) {
  auto r = runner::api::parse_healthcheck(json::parse(text));
  auto* e = std::get_if<std::string>(&r);
  return e ? *e : "";
}

TEST(Healthcheck, ReadsTestAndDurationsInNanoseconds) {
  const HealthcheckSpec shell = health(R"({"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
      "Interval": 1000000000, "Timeout": 2500000000, "StartPeriod": 3000000000, "StartInterval": 500000000,
      "Retries": 2})");
  ASSERT_EQ(shell.kind, HealthcheckSpec::Kind::check);
  EXPECT_EQ(shell.check.argv, (std::vector<std::string>{"/bin/sh", "-c", "wget -q localhost || exit 1"}));
  EXPECT_EQ(shell.check.interval, 1s);
  EXPECT_EQ(shell.check.timeout, 2500ms);
  EXPECT_EQ(shell.check.start_period, 3s);
  EXPECT_EQ(shell.check.start_interval, 500ms);
  EXPECT_EQ(shell.check.retries, 2u);
  // CMD is an argv; durations left at 0 are Docker's defaults.
  const HealthcheckSpec cmd = health(R"({"Test": ["CMD", "pg_isready", "-U", "x"], "Interval": 0})");
  EXPECT_EQ(cmd.check.argv, (std::vector<std::string>{"pg_isready", "-U", "x"}));
  EXPECT_EQ(cmd.check.interval, 30s);
  EXPECT_EQ(cmd.check.timeout, 30s);
  EXPECT_EQ(cmd.check.start_period, 0s);
  EXPECT_EQ(cmd.check.retries, 3u);
  EXPECT_EQ(health(R"({"Test": ["NONE"]})").kind, HealthcheckSpec::Kind::none);
  EXPECT_EQ(health(R"({"Test": []})").kind, HealthcheckSpec::Kind::inherit);
  EXPECT_EQ(health("null").kind, HealthcheckSpec::Kind::inherit);
}

TEST(Healthcheck, RefusesWhatDockerRefuses) {
  EXPECT_EQ(health_error(R"({"Test": ["CMD-SHELL", "true"], "Interval": 1000})"),
            "Interval in Healthcheck cannot be less than 1ms");
  EXPECT_EQ(health_error(R"({"Test": ["CMD-SHELL", "true"], "Timeout": 10})"),
            "Timeout in Healthcheck cannot be less than 1ms");
  EXPECT_EQ(health_error(R"({"Test": ["CMD-SHELL", "true"], "Retries": -1})"),
            "Retries in Healthcheck cannot be negative");
  EXPECT_EQ(health_error(R"({"Test": ["RUN", "true"]})"),
            "Healthcheck.Test: unknown type \"RUN\" (CMD, CMD-SHELL or NONE)");
  EXPECT_EQ(health_error(R"({"Test": ["CMD"]})"), "Healthcheck.Test: CMD needs a command");
  EXPECT_EQ(health_error(R"({"Test": "CMD true"})"), "Healthcheck.Test: expected an array of strings");
}

TEST(Healthcheck, TheCreatesCheckOrTheImagesWithTheCreatesDurations) {
  const HealthcheckSpec image = health(R"({"Test": ["CMD", "check"], "Interval": 5000000000})");
  EXPECT_FALSE(runner::api::effective_healthcheck(health(R"({"Test": ["NONE"]})"), image));
  EXPECT_FALSE(runner::api::effective_healthcheck(HealthcheckSpec{}, HealthcheckSpec{}));
  auto inherited = runner::api::effective_healthcheck(health(R"({"Retries": 7})"), image);
  ASSERT_TRUE(inherited);
  EXPECT_EQ(inherited->argv, std::vector<std::string>{"check"});
  EXPECT_EQ(inherited->interval, 5s);
  EXPECT_EQ(inherited->retries, 7u);
  auto own = runner::api::effective_healthcheck(health(R"({"Test": ["CMD", "mine"]})"), image);
  EXPECT_EQ(own->argv, std::vector<std::string>{"mine"});
  EXPECT_EQ(own->interval, 30s);
}

HealthResult result(int code, std::string out = "") { return HealthResult{1, 2, code, std::move(out)}; }

TEST(HealthState, CountsAsDockerDoes) {
  HealthState s;
  EXPECT_EQ(s.status, HealthStatus::starting);
  // A failure in the start period does not count.
  EXPECT_FALSE(s.record(result(1), 2, true));
  EXPECT_EQ(s.failing_streak, 0u);
  EXPECT_EQ(s.status, HealthStatus::starting);
  EXPECT_TRUE(s.record(result(0), 2, true));
  EXPECT_EQ(s.status, HealthStatus::healthy);
  // Once healthy, a failure counts even in the start period; `retries` in a row: unhealthy.
  EXPECT_FALSE(s.record(result(1), 2, true));
  EXPECT_EQ(s.failing_streak, 1u);
  EXPECT_EQ(s.status, HealthStatus::healthy);
  EXPECT_TRUE(s.record(result(-1), 2, false));
  EXPECT_EQ(s.status, HealthStatus::unhealthy);
  EXPECT_EQ(s.failing_streak, 2u);
  EXPECT_TRUE(s.record(result(0), 2, false));
  EXPECT_EQ(s.failing_streak, 0u);
  // The last five results are kept.
  for (int i = 0; i < 7; ++i) s.record(result(0, std::to_string(i)), 2, false);
  ASSERT_EQ(s.log.size(), 5u);
  EXPECT_EQ(s.log.front().output, "2");
  EXPECT_EQ(s.log.back().output, "6");
}

TEST(HealthState, ShowsAsStateHealthAndInPsStatus) {
  HealthState s;
  s.record(HealthResult{int64_t{1'000'000'000}, int64_t{1'500'000'000}, 0, "ok\n"}, 3, false);
  EXPECT_EQ(runner::api::health_state_json(s),
            json::parse(R"({"Status": "healthy", "FailingStreak": 0, "Log": [{"Start": "1970-01-01T00:00:01.000000000Z",
                "End": "1970-01-01T00:00:01.500000000Z", "ExitCode": 0, "Output": "ok\n"}]})"));
  runner::ContainerRecord r;
  r.status = runner::ContainerStatus::running;
  r.started_ns = 0;
  EXPECT_EQ(runner::api::status_text(r, int64_t{5'000'000'000}, &s), "Up 5 seconds (healthy)");
  s.status = HealthStatus::starting;
  EXPECT_EQ(runner::api::status_text(r, int64_t{5'000'000'000}, &s), "Up 5 seconds (health: starting)");
  EXPECT_EQ(runner::api::status_text(r, int64_t{5'000'000'000}), "Up 5 seconds");
}

TEST(HealthTimeout, IsWordedAsGoPrintsDurations) {
  EXPECT_EQ(runner::go_duration(30s), "30s");
  EXPECT_EQ(runner::go_duration(1500ms), "1.5s");
  EXPECT_EQ(runner::go_duration(500ms), "500ms");
  EXPECT_EQ(runner::go_duration(90s), "1m30s");
  EXPECT_EQ(runner::go_duration(std::chrono::milliseconds(3'600'000)), "1h0m0s");
}

}  // namespace
}  // namespace sandrun::testing
