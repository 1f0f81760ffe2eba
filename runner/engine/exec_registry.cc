// The daemon's execs: created, started into their container's running Container, exited, kept
// until the container goes.
#include "runner/engine/exec_registry.h"

#include <algorithm>
#include <csignal>

#include "runner/engine/container.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

struct ExecRegistry::Entry {
  Exec x;
  uint64_t seq = 0;  // creation order
  std::unique_ptr<ExecProcess> process;
  Follower follower;
  std::optional<sandbox::TtySize> pending_size;  // a resize before its terminal was open
  bool forked = false;
};

std::string exec_command_text(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

ExecRegistry::ExecRegistry(Loop& loop, ContainerRegistry& containers, EventBus* events)
    : loop_(loop), containers_(containers), events_(events) {
  uv_timer_init(loop_.get(), reaper_.get());
  reaper_.mark_live();
  reaper_.get()->data = this;
  if (events_) {
    bus_token_ = events_->subscribe([this](const EngineEvent& ev) {
      if (ev.type == "container" && ev.action == "destroy") forget_container(ev.id);
    });
  }
}

ExecRegistry::~ExecRegistry() {
  if (events_ && bus_token_) events_->unsubscribe(bus_token_);
}

std::variant<std::string, ContainerRefusal> ExecRegistry::create(std::string_view ref, ExecRequest request, Attach attach) {
  const ContainerRecord* rec = containers_.find(ref);
  if (!rec) return containers_.no_such(ref);
  if (!containers_.running(rec->id))
    return ContainerRefusal{ContainerRefusal::Kind::conflict, fmt::format("container {} is not running", rec->id)};
  if (request.argv.empty() || request.argv.front().empty())
    return ContainerRefusal{ContainerRefusal::Kind::invalid, "No exec command specified"};
  auto e = std::make_unique<Entry>();
  e->seq = next_seq_++;
  e->x.id = new_container_id();
  e->x.container_id = rec->id;
  e->x.request = std::move(request);
  e->x.attach = attach;
  const std::string id = e->x.id;
  publish(e->x, "exec_create: " + exec_command_text(e->x.request.argv));
  execs_.emplace(id, std::move(e));
  return id;
}

std::optional<ContainerRefusal> ExecRegistry::start(const std::string& id, Follower follower) {
  auto it = execs_.find(id);
  if (it == execs_.end()) return ContainerRefusal{ContainerRefusal::Kind::not_found, fmt::format("No such exec instance: {}", id)};
  Entry& e = *it->second;
  if (e.x.state == State::running)
    return ContainerRefusal{ContainerRefusal::Kind::conflict, fmt::format("Error: Exec command {} is already running", id)};
  if (e.x.state == State::exited)
    return ContainerRefusal{ContainerRefusal::Kind::conflict, fmt::format("Error: Exec command {} has already run", id)};
  Container* c = containers_.running(e.x.container_id);
  if (!c)
    return ContainerRefusal{ContainerRefusal::Kind::conflict, fmt::format("container {} is not running", e.x.container_id)};
  e.follower = std::move(follower);
  e.x.state = State::running;
  if (e.pending_size && e.x.request.tty) e.x.request.tty = *e.pending_size;
  e.pending_size.reset();
  Entry* p = &e;
  ExecProcess::Hooks hooks;
  hooks.output = [p](int stream, std::string_view data) {
    if (p->follower.output) p->follower.output(stream, data);
  };
  hooks.started = [p] {
    p->x.pid = p->process->pid();
    p->forked = true;
    if (p->pending_size) (void)p->process->resize(*p->pending_size);
    p->pending_size.reset();
  };
  hooks.stdin_drained = [p] {
    if (p->follower.stdin_drained) p->follower.stdin_drained();
  };
  hooks.exited = [this, p] { on_exited(*p); };
  e.process = std::make_unique<ExecProcess>(containers_.engine(), *c, e.x.request, std::move(hooks));
  publish(e.x, "exec_start: " + exec_command_text(e.x.request.argv));
  e.process->start();
  return std::nullopt;
}

void ExecRegistry::on_exited(Entry& e) {
  e.x.state = State::exited;
  e.x.exit_code = e.process->exit_code();
  if (e.process->start_error()) {
    e.x.error = e.process->start_error()->message();
  } else {
    const sandbox::Outcome o = e.process->outcome();
    if (o.kind == sandbox::Outcome::Kind::exec_failed || o.kind == sandbox::Outcome::Kind::setup_failed)
      e.x.error = o.error ? o.error->message() : "exec failed";
  }
  publish(e.x, "exec_die", {{"exitCode", std::to_string(*e.x.exit_code)}});
  // Freed after this hook has returned (ExecProcess's contract), with the fds it holds.
  graveyard_.push_back(std::move(e.process));
  uv_timer_start(reaper_.get(), on_reap, 0, 0);
  auto follower = std::move(e.follower);
  e.follower = {};
  if (follower.exited) follower.exited();
}

void ExecRegistry::on_reap(uv_timer_t* t) { static_cast<ExecRegistry*>(t->data)->graveyard_.clear(); }

Result<void> ExecRegistry::resize(const std::string& id, sandbox::TtySize size) {
  auto it = execs_.find(id);
  if (it == execs_.end()) return Error::msg("No such exec instance: {}", id);
  Entry& e = *it->second;
  if (!e.x.request.tty) return Error::msg("exec {} has no terminal to resize", id);
  if (e.x.state == State::exited) return Error::msg("exec {} has ended", id);
  if (e.x.state == State::created || !e.forked) {
    e.pending_size = size;
    return {};
  }
  return e.process->resize(size);
}

void ExecRegistry::unfollow(const std::string& id) {
  auto it = execs_.find(id);
  if (it == execs_.end()) return;
  it->second->follower = {};
  // Nobody reads it now: its output is drained and dropped, never held back.
  if (it->second->process) it->second->process->resume_output();
}

ExecProcess* ExecRegistry::process(const std::string& id) {
  auto it = execs_.find(id);
  if (it == execs_.end() || it->second->x.state != State::running) return nullptr;
  return it->second->process.get();
}

const ExecRegistry::Exec* ExecRegistry::find(const std::string& id) const {
  auto it = execs_.find(id);
  return it == execs_.end() ? nullptr : &it->second->x;
}

std::vector<std::string> ExecRegistry::of_container(const std::string& container_id) const {
  std::vector<const Entry*> found;
  for (const auto& [id, e] : execs_) {
    if (e->x.container_id == container_id) found.push_back(e.get());
  }
  std::vector<std::string> out;
  std::sort(found.begin(), found.end(), [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  for (const Entry* e : found) out.push_back(e->x.id);
  return out;
}

// Its container is gone: so are its execs. One still running (the kernel ends it with the
// container's PID namespace) is killed and reaped by its ExecProcess's destructor.
void ExecRegistry::forget_container(const std::string& container_id) {
  for (auto it = execs_.begin(); it != execs_.end();) {
    if (it->second->x.container_id != container_id) {
      ++it;
      continue;
    }
    if (it->second->process) {
      it->second->process->signal(SIGKILL);
      graveyard_.push_back(std::move(it->second->process));
      uv_timer_start(reaper_.get(), on_reap, 0, 0);
    }
    it = execs_.erase(it);
  }
}

void ExecRegistry::publish(const Exec& x, std::string action, std::map<std::string, std::string> extra) {
  if (!events_) return;
  EngineEvent ev;
  ev.type = "container";
  ev.action = std::move(action);
  ev.id = x.container_id;
  if (const ContainerRecord* rec = containers_.find(x.container_id)) {
    ev.attributes = rec->labels;
    ev.attributes["name"] = rec->name;
    ev.attributes["image"] = rec->spec.image;
  }
  ev.attributes["execID"] = x.id;
  for (auto& [k, v] : extra) ev.attributes[k] = std::move(v);
  events_->publish(std::move(ev));
}

}  // namespace sandrun::runner
