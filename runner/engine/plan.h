// What resolve makes of a job: JobPlan (its container's plan, a value shared by every attempt,
// plus its scheduling rules), ServicePlan, PublishedPort. Values only: no libuv here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/job_file.h"
#include "sandbox/container_plan.h"

namespace sandrun::runner {

// A named cache volume of a job (JobSpec::caches), bound when its container starts.
struct CacheMount {
  std::string name;    // file-safe: "cache-pip-1f2e3d4c" (see cache_mount)
  std::string target;  // absolute container path
};

// A port published on the host: host_ip:host_port forwards to container_port of `service`'s
// container ("" = the job's own).
struct PublishedPort {
  std::string service;
  uint16_t container_port = 0;
  std::string host_ip;
  uint16_t host_port = 0;
};

struct ServicePlan;

// A job resolved and ready to run: its container's plan and its scheduling rules. Made by
// resolve (runner/engine/resolve.h) and not written after: the container plan is shared,
// const, by every attempt and every front door that shows it.
struct JobPlan {
  std::string name;
  std::shared_ptr<const sandbox::ContainerPlan> container;
  const sandbox::ContainerPlan& spec() const { return *container; }
  std::optional<std::chrono::milliseconds> timeout;
  // The job's name made safe as a file name (logs/<file_name>.log, artifacts/<file_name>/):
  // no '/', no control characters, not "." or "..".
  std::string file_name;
  uint64_t log_max = config::kDefaultLogMax;  // bytes of its log file (JobOutput::set_log_max)
  std::vector<size_t> needs;       // indices (in the run's plans) of the jobs this one needs
  unsigned retries = 0;
  bool allow_failure = false;
  config::Artifacts artifacts;     // what is collected after the job exits
  std::vector<std::string> junit;  // JUnit files among the artifacts, for the --junit report
  std::vector<std::pair<std::string, std::string>> matrix;  // for reports
  std::vector<CacheMount> caches;  // named cache volumes, bound when the container starts
  config::Network network = config::Network::none;
  // The runner makes the job's network namespace itself (services, published ports, or
  // network = "private") and every container of the job joins it (Placement::netns_fd).
  bool shared_netns = false;
  std::vector<config::PortSpec> ports;  // published ports of the job's container
  std::vector<ServicePlan> services;    // started before the job, in the order written
};

// A service of a job: its own container plan (name = the service's name), its ready check
// as a plan of the same image whose argv (the check) runs as an exec into the service's
// container (runner/engine/pod.cc).
struct ServicePlan {
  JobPlan plan;
  std::optional<JobPlan> ready;  // none: ready once started
  std::chrono::milliseconds ready_interval{1000};
  std::chrono::milliseconds ready_timeout{60'000};
};

}  // namespace sandrun::runner
