// Docker's network JSON without a daemon: create requests taken and refused, field by field.
#include <gtest/gtest.h>

#include "runner/api/network_json.h"

namespace sandrun::runner::api {
namespace {

TEST(NetworkCreateTest, TakesDockersRequest) {
  std::vector<std::string> warnings;
  auto spec = parse_network_create(
      R"({"Name":"n1","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,
          "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.30.0.0/16","Gateway":"172.30.0.9"}]},
          "Internal":true,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,
          "Options":{},"Labels":{"team":"ci"}})",
      warnings);
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->name, "n1");
  EXPECT_EQ(*spec->subnet, "172.30.0.0/16");
  EXPECT_EQ(*spec->gateway, "172.30.0.9");
  EXPECT_TRUE(spec->internal);
  EXPECT_EQ(spec->labels.at("team"), "ci");
  EXPECT_TRUE(warnings.empty());
  spec = parse_network_create(R"({"Name":"n2","Options":{"com.docker.network.bridge.name":"x"}})", warnings);
  ASSERT_TRUE(spec);
  EXPECT_EQ(warnings, std::vector<std::string>{"sandrun keeps but does not apply the driver options "
                                               "com.docker.network.bridge.name"});
}

TEST(NetworkCreateTest, RefusalsNameTheField) {
  std::vector<std::string> w;
  auto refused = [&](const char* body) { return parse_network_create(body, w).error().message(); };
  EXPECT_EQ(refused("{}"), "Name: a network needs a name");
  EXPECT_EQ(refused("nope"), "invalid JSON: expected a network create request object");
  EXPECT_EQ(refused(R"({"Name":"n","Driver":"overlay"})"),
            "Driver: sandrun's networks use the bridge driver only, not \"overlay\"");
  EXPECT_EQ(refused(R"({"Name":"n","EnableIPv6":true})"), "EnableIPv6: sandrun's networks are IPv4 only");
  EXPECT_EQ(refused(R"({"Name":"n","Labels":{"a":1}})"), "Labels.a: expected a string");
  EXPECT_EQ(refused(R"({"Name":"n","Internal":"yes"})"), "Internal: expected a boolean");
  EXPECT_EQ(refused(R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","IPRange":"10.1.1.0/24"}]}})"),
            "IPAM.Config[0].IPRange: not supported by sandrun (addresses come from the whole subnet)");
  EXPECT_EQ(refused(R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/16"},{"Subnet":"fd00::/64"}]}})"),
            "IPAM.Config: sandrun's networks have one IPv4 subnet, not 2");
  EXPECT_EQ(refused(R"({"Name":"n","IPAM":{"Driver":"dhcp"}})"),
            "IPAM.Driver: sandrun has only the default IPAM driver, not \"dhcp\"");
}

}  // namespace
}  // namespace sandrun::runner::api
