// `sandrun ps|logs|stop|rm`: the daemon's containers, through its Engine API (runner/api/client.h),
// in the style of `sandrun image ls` (aligned columns, errors as sandrun prints them).
#include <unistd.h>

#include <cctype>
#include <ctime>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/api/client.h"
#include "runner/cli/commands.h"
#include "runner/cli/common.h"
#include "runner/report/output.h"
#include "sandbox/sys/text.h"

namespace sandrun::runner {
namespace {

// Path segments and query values as Docker's clients escape them.
std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

// The reply, or an error that says what the daemon said.
Result<api::ClientReply> expect(Result<api::ClientReply> r, std::string_view what) {
  if (!r) return std::move(r.error());
  if (r->status >= 300 && r->status != 304) return Error::msg("{}: {}", what, r->message());
  return r;
}

std::string ago(int64_t created) {
  const int64_t s = std::max<int64_t>(0, static_cast<int64_t>(::time(nullptr)) - created);
  auto n = [](int64_t v, const char* unit) { return fmt::format("{} {}{} ago", v, unit, v == 1 ? "" : "s"); };
  if (s < 60) return n(s, "second");
  if (s < 3600) return n(s / 60, "minute");
  if (s < 86400) return n(s / 3600, "hour");
  return n(s / 86400, "day");
}

std::string ports_of(const nlohmann::json& c) {
  std::string out;
  for (const auto& p : c.value("Ports", nlohmann::json::array())) {
    if (!out.empty()) out += ", ";
    if (p.contains("PublicPort"))
      out += fmt::format("{}:{}->", p.value("IP", std::string("0.0.0.0")), p.value("PublicPort", 0));
    out += fmt::format("{}/{}", p.value("PrivatePort", 0), p.value("Type", std::string("tcp")));
  }
  return out;
}

int fail(const Error& e) {
  print_error(e);
  return kExitFailed;
}

}  // namespace

int cmd_ps(const GlobalOptions& g, bool all) {
  auto run = [&]() -> Result<void> {
    const auto client = SANDRUN_TRY(api::ApiClient::open(g.host));
    const auto reply = SANDRUN_TRY(expect(client.call("GET", all ? "/containers/json?all=1" : "/containers/json"), "ps"));
    const auto list = nlohmann::json::parse(reply.body, nullptr, false);
    if (!list.is_array()) return Error::msg("ps: the daemon's answer is not a list of containers");
    struct Row { std::string id, image, command, created, status, ports, name; };
    std::vector<Row> rows;
    for (const auto& c : list) {
      std::string name = c.value("Names", nlohmann::json::array()).empty() ? "" : c["Names"][0].get<std::string>();
      if (name.starts_with('/')) name.erase(0, 1);
      std::string cmd = c.value("Command", std::string());
      if (cmd.size() > 20) cmd = cmd.substr(0, 19) + "…";
      rows.push_back({c.value("Id", std::string()).substr(0, 12), c.value("Image", std::string()), "\"" + cmd + "\"",
                      ago(c.value("Created", int64_t{0})), c.value("Status", std::string()), ports_of(c), name});
    }
    size_t w[6] = {12, 5, 7, 7, 6, 5};
    for (const auto& r : rows) {
      w[1] = std::max(w[1], r.image.size());
      w[2] = std::max(w[2], r.command.size());
      w[3] = std::max(w[3], r.created.size());
      w[4] = std::max(w[4], r.status.size());
      w[5] = std::max(w[5], r.ports.size());
    }
    auto line = [&](const Row& r) {
      return fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", r.id, w[0], r.image, w[1], r.command,
                         w[2], r.created, w[3], r.status, w[4], r.ports, w[5], r.name);
    };
    std::string out = line({"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"});
    for (const auto& r : rows) out += line(r);
    console_write(STDOUT_FILENO, terminal_safe(out, true));
    return {};
  };
  if (auto r = run(); !r) return fail(r.error());
  return kExitOk;
}

int cmd_logs(const GlobalOptions& g, const LogsArgs& a) {
  auto run = [&]() -> Result<void> {
    const auto client = SANDRUN_TRY(api::ApiClient::open(g.host));
    std::string target = fmt::format("/containers/{}/logs?stdout=1&stderr=1", escape(a.name));
    if (a.follow) target += "&follow=1";
    if (a.timestamps) target += "&timestamps=1";
    if (!a.tail.empty()) target += "&tail=" + escape(a.tail);
    if (!a.since.empty()) target += "&since=" + escape(a.since);
    api::StreamDemux demux;
    // A TTY container's log is one raw stream; otherwise Docker's 8-byte frames. Decided on
    // the first 8 bytes, which a read may split.
    std::string head;
    std::optional<bool> raw;
    auto feed = [&](std::string_view part) {
      if (*raw) return console_write(STDOUT_FILENO, part);
      demux.feed(part, [](int stream, std::string_view bytes) {
        console_write(stream == 2 ? STDERR_FILENO : STDOUT_FILENO, bytes);
      });
    };
    auto reply = SANDRUN_TRY(expect(client.stream("GET", target, [&](std::string_view part) {
      if (raw) return feed(part);
      head.append(part);
      if (head.size() < 8) return;
      raw = (head[0] != 0 && head[0] != 1 && head[0] != 2) || head[1] != 0 || head[2] != 0 || head[3] != 0;
      feed(head);
    }), fmt::format("logs {}", a.name)));
    (void)reply;
    if (!raw && !head.empty()) console_write(STDOUT_FILENO, head);  // fewer than 8 bytes: not a frame
    return {};
  };
  if (auto r = run(); !r) return fail(r.error());
  return kExitOk;
}

int cmd_stop(const GlobalOptions& g, const StopArgs& a) {
  int status = kExitOk;
  auto client = api::ApiClient::open(g.host);
  if (!client) return fail(client.error());
  for (const auto& name : a.names) {
    std::string target = a.remove ? fmt::format("/containers/{}{}", escape(name), a.force ? "?force=1" : "")
                                  : fmt::format("/containers/{}/stop", escape(name));
    if (!a.remove && !a.time.empty()) target += "?t=" + escape(a.time);
    auto r = expect(client->call(a.remove ? "DELETE" : "POST", target), fmt::format("{} {}", a.remove ? "rm" : "stop", name));
    if (!r) {
      print_error(r.error());
      status = kExitFailed;
      continue;
    }
    console_write(STDOUT_FILENO, terminal_safe(name) + "\n");
  }
  return status;
}

}  // namespace sandrun::runner
