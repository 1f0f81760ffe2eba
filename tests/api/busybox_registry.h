// A test registry (tests/support/registry_server.h) holding runnable images for the clients'
// scenarios, made from the host's busybox-static (the built-in image's rootfs) as one layer:
//   ci/busybox:1  Cmd ["sh"], with /etc/pulled ("from the registry\n");
//   ci/web:1      a service: Cmd ["httpd", "-f", "-p", "80", "-h", "/www"], /www/index.html
//                 ("served by ci/web\n"), ExposedPorts 80/tcp.
// Apart from the registry's header: tests/api/api_client.h and it both name an HttpReply.
#pragma once

#include <memory>
#include <string>

namespace sandrun::testing {

class RegistryServer;

class BusyboxRegistry {
 public:
  // Whether the registry's tools are installed (else says which not).
  static bool available(std::string* why);
  // Starts the registry and pushes both images; "" or the error.
  std::string start();
  BusyboxRegistry();
  ~BusyboxRegistry();
  // "127.0.0.1:PORT/ci/NAME:1".
  std::string reference(const std::string& name) const;

 private:
  std::unique_ptr<RegistryServer> server_;
};

}  // namespace sandrun::testing
