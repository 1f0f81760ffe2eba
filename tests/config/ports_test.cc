// Tests of parse_port: the published port syntax shared by `ports = [...]` and `exec -p`.
#include <gtest/gtest.h>

#include "config/job_file.h"

namespace sandrun::config {
namespace {

std::string error_of(const Result<PortSpec>& r) { return r.ok() ? "(no error)" : r.error().message(); }

PortSpec port(std::string_view text) {
  auto r = parse_port(text);
  EXPECT_TRUE(r.ok()) << text << ": " << error_of(r);
  return r.ok() ? r.take() : PortSpec{};
}

TEST(PortsTest, HostAndContainerPortBindDockersDefaultAddress) {
  PortSpec p = port("8080:80");
  EXPECT_EQ(p.host_ip, "0.0.0.0");
  EXPECT_EQ(p.host_port, 8080);
  EXPECT_EQ(p.container_port, 80);
  EXPECT_EQ(p.text, "8080:80");
}

TEST(PortsTest, AContainerPortAlonePublishesOnAnyFreeHostPort) {
  PortSpec p = port("6379");
  EXPECT_EQ(p.host_ip, "0.0.0.0");
  EXPECT_EQ(p.host_port, 0);
  EXPECT_EQ(p.container_port, 6379);
}

TEST(PortsTest, AnIPv4AddressAndHostPortZero) {
  PortSpec p = port("127.0.0.1:0:5432");
  EXPECT_EQ(p.host_ip, "127.0.0.1");
  EXPECT_EQ(p.host_port, 0);
  EXPECT_EQ(p.container_port, 5432);
  EXPECT_EQ(p.text, "127.0.0.1:0:5432");
}

TEST(PortsTest, AnIPv6AddressIsWrittenInBracketsAndKeptWithout) {
  PortSpec p = port("[::1]:8080:80");
  EXPECT_EQ(p.host_ip, "::1");
  EXPECT_EQ(p.host_port, 8080);
  EXPECT_EQ(p.container_port, 80);
  EXPECT_EQ(port("[::]:0:80").host_ip, "::");
  EXPECT_EQ(port("[fe80::1:2]:1:65535").container_port, 65535);
}

TEST(PortsTest, ATcpSuffixIsAcceptedAndUdpRefused) {
  EXPECT_EQ(port("8080:80/tcp").container_port, 80);
  EXPECT_EQ(port("80/tcp").container_port, 80);
  EXPECT_EQ(port("8080:80/tcp").text, "8080:80/tcp");
  EXPECT_EQ(error_of(parse_port("53:53/udp")), R"(invalid port "53:53/udp": only TCP ports are published)");
  EXPECT_EQ(error_of(parse_port("80/http")), R"(invalid port "80/http": unknown protocol "http": expected "tcp")");
}

TEST(PortsTest, PortsOutOfRangeSayWhichOne) {
  EXPECT_EQ(error_of(parse_port("8080:99999")), R"(invalid port "8080:99999": container port must be 1-65535)");
  EXPECT_EQ(error_of(parse_port("8080:0")), R"(invalid port "8080:0": container port must be 1-65535)");
  EXPECT_EQ(error_of(parse_port("0")), R"(invalid port "0": container port must be 1-65535)");
  EXPECT_EQ(error_of(parse_port("70000:80")),
            R"(invalid port "70000:80": host port must be 0-65535 (0: any free port))");
  EXPECT_EQ(port("65535:1").host_port, 65535);
}

TEST(PortsTest, AddressesAreCheckedAndIPv6NeedsBrackets) {
  EXPECT_EQ(error_of(parse_port("localhost:8080:80")),
            R"(invalid port "localhost:8080:80": "localhost" is not an IP address)");
  EXPECT_EQ(error_of(parse_port("300.0.0.1:8080:80")),
            R"(invalid port "300.0.0.1:8080:80": "300.0.0.1" is not an IP address)");
  EXPECT_EQ(error_of(parse_port("::1:8080:80")),
            R"(invalid port "::1:8080:80": write an IPv6 address in brackets: "[::1]:HOST:CONTAINER")");
  EXPECT_EQ(error_of(parse_port("[1.2.3.4]:8080:80")),
            R"(invalid port "[1.2.3.4]:8080:80": "1.2.3.4" is not an IPv6 address)");
  EXPECT_EQ(error_of(parse_port(":8080:80")), R"(invalid port ":8080:80": the address before HOST_PORT is empty)");
}

TEST(PortsTest, OtherShapesShowTheExpectedForms) {
  const std::string expected =
      R"(expected [IP:]HOST_PORT:CONTAINER_PORT like "8080:80" or "127.0.0.1:0:5432", or a CONTAINER_PORT like "80")";
  for (std::string_view bad : {"", "http", "80:", ":80", "8080:80:", "a:80", "+80", "-1", " 80", "0x50",
                               "[::1]:80", "/tcp", "8080-8090:80"}) {
    EXPECT_EQ(error_of(parse_port(bad)), fmt::format("invalid port \"{}\": {}", bad, expected)) << bad;
  }
}

}  // namespace
}  // namespace sandrun::config
