// Pod: a job that needs more than its own container: its services, their ready checks and its
// published ports, all in one network namespace the runner makes for the job. The services
// start in parallel; the job's container starts when every service is ready; then the
// services are stopped and destroyed, and the namespace goes with the last of them.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runner/engine/exec_process.h"
#include "runner/engine/job.h"
#include "runner/net/outbound.h"
#include "runner/net/port_proxy.h"
#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

class Runner;

class Pod {
 public:
  // One attempt of plan `index` of the runner.
  Pod(Runner& runner, const JobPlan& plan, size_t index, unsigned attempt);
  ~Pod();
  Pod(const Pod&) = delete;
  Pod& operator=(const Pod&) = delete;

  // Makes the network namespace and starts the services (on the loop thread). Ends with
  // Runner::job_done(index, result).
  void start();
  // Cancellation: `sig` to the job's container; the services are killed.
  void stop(int sig);
  void kill();
  // It has reported its end (Runner::job_done) and may be freed once that call has returned.
  bool finished() const { return finished_; }

 private:
  struct Service {
    Pod* pod = nullptr;
    size_t index = 0;
    const ServicePlan* plan = nullptr;
    Job* container = nullptr;  // owned by jobs_
    // The ready check running now, if any: an exec into the service's container.
    std::unique_ptr<ExecProcess> check;
    std::unique_ptr<ExecProcess> spent;  // the last check, ended (freed outside its callbacks)
    UvHandle<uv_timer_t> retry;
    UvHandle<uv_timer_t> deadline;       // kills a check still running at the ready timeout
    std::chrono::steady_clock::time_point started;
    bool ready = false;
    bool ended = false;
  };

  Job& make(const JobPlan& plan, ConsoleMode mode, bool append_log, std::vector<std::string> env);
  Result<void> open_ports(const std::vector<config::PortSpec>& ports, const std::string& service);
  void namespace_ready();  // open the job's ports, start its outbound stack or its services
  void start_outbound();
  void start_services();
  void start_service(size_t i);
  void note(const std::string& text);
  void finish();
  void check_ready(size_t i);
  void check_ended(size_t i);
  void retry_check(size_t i, std::chrono::milliseconds after);
  void service_ended(size_t i, Job& container);
  void maybe_start_job();
  void job_ended(Job& job);
  void fail(const std::string& message, const std::vector<std::string>& tail);
  void wind_down();
  void maybe_done();
  std::string hosts() const;

  Runner& runner_;
  const JobPlan& plan_;  // the runner's, which outlives the pod
  size_t index_;
  unsigned attempt_;
  UniqueFd netns_;
  Outbound outbound_;              // network = "private": pasta or slirp4netns
  bool starting_outbound_ = false;
  bool creating_netns_ = false;
  BlockingCall blocking_;          // making the namespace, starting or stopping the outbound stack
  std::vector<std::unique_ptr<Service>> services_;
  std::vector<std::unique_ptr<Job>> jobs_;  // every container started, kept until the pod goes
  std::vector<std::unique_ptr<PortProxy>> proxies_;  // the job's and its services' published ports
  size_t closing_proxies_ = 0;
  Job* job_ = nullptr;
  JobResult result_;
  bool finished_ = false;
  bool failed_ = false;
  bool stopping_ = false;  // cancelled, or the job has ended: the services go
  bool done_ = false;
  int stop_signal_ = 0;
};

}  // namespace sandrun::runner
