// The values of user networks without privileges: IPv4 subnets and the pool, addresses, records.
#include <gtest/gtest.h>

#include "runner/net/ipv4.h"
#include "runner/net/network_record.h"

namespace sandrun::runner {
namespace {

Subnet subnet(const char* text) {
  auto s = Subnet::parse(text);
  EXPECT_TRUE(s) << s.error().message();
  return s ? *s : Subnet{};
}

TEST(Ipv4Test, ParsesDottedQuadsOnly) {
  EXPECT_EQ(Ipv4::parse("10.89.0.2")->str(), "10.89.0.2");
  EXPECT_EQ(Ipv4::parse("255.255.255.255")->value, 0xffffffffu);
  for (const char* bad : {"", "10.89.0", "10.89.0.256", "10.089.0.1", "10.89.0.1 ", "a.b.c.d", "1.2.3.4.5", "::1"})
    EXPECT_FALSE(Ipv4::parse(bad)) << bad;
}

TEST(Ipv4Test, SubnetsRefuseHostBitsAndBadPrefixes) {
  EXPECT_EQ(subnet("10.89.3.0/24").str(), "10.89.3.0/24");
  EXPECT_EQ(Subnet::parse("10.89.3.1/24").error().message(),
            "invalid subnet 10.89.3.1/24: it has host bits set (the network is 10.89.3.0/24)");
  EXPECT_EQ(Subnet::parse("10.89.3.0").error().message(),
            "invalid subnet 10.89.3.0: expected an IPv4 network like 10.89.3.0/24");
  EXPECT_FALSE(Subnet::parse("10.89.3.0/33"));
  EXPECT_FALSE(Subnet::parse("10.89.3.0/"));
  EXPECT_FALSE(Subnet::parse("fd00::/64"));
  const Subnet s = subnet("10.89.3.0/24");
  EXPECT_EQ(s.first_host().str(), "10.89.3.1");
  EXPECT_EQ(s.last_host().str(), "10.89.3.254");
  EXPECT_EQ(s.broadcast().str(), "10.89.3.255");
  EXPECT_TRUE(s.overlaps(subnet("10.89.0.0/16")));
  EXPECT_TRUE(subnet("10.89.0.0/16").overlaps(s));
  EXPECT_FALSE(s.overlaps(subnet("10.89.4.0/24")));
}

TEST(Ipv4Test, ThePoolGivesTheFirstSubnetOverlappingNone) {
  const Subnet pool = subnet("10.89.0.0/16");
  EXPECT_EQ(allocate_subnet(pool, 24, {})->str(), "10.89.0.0/24");
  EXPECT_EQ(allocate_subnet(pool, 24, {subnet("10.89.0.0/24"), subnet("10.89.1.0/25")})->str(), "10.89.2.0/24");
  // A user's subnet inside the pool is skipped whatever its size.
  EXPECT_EQ(allocate_subnet(pool, 24, {subnet("10.89.0.0/23")})->str(), "10.89.2.0/24");
  EXPECT_FALSE(allocate_subnet(pool, 24, {subnet("10.89.0.0/16")}));
  EXPECT_FALSE(allocate_subnet(subnet("10.89.0.0/24"), 16, {}));
  std::vector<Subnet> used;
  for (int i = 0; i < 4; ++i) used.push_back(*allocate_subnet(subnet("10.89.0.0/22"), 24, used));
  EXPECT_FALSE(allocate_subnet(subnet("10.89.0.0/22"), 24, used));
}

TEST(Ipv4Test, AddressesSkipTheTakenOnes) {
  const Subnet s = subnet("10.89.0.0/29");
  std::vector<Ipv4> taken{s.first_host()};
  for (const char* want : {"10.89.0.2", "10.89.0.3", "10.89.0.4", "10.89.0.5", "10.89.0.6"}) {
    auto a = allocate_address(s, taken);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->str(), want);
    taken.push_back(*a);
  }
  EXPECT_FALSE(allocate_address(s, taken));
  EXPECT_EQ(mac_for(*Ipv4::parse("10.89.0.2")), "02:42:0a:59:00:02");
}

TEST(NetworkRecordTest, RoundTrips) {
  NetworkRecord r{random_hex_id(), "n1", rfc3339_now(), subnet("10.89.0.0/24"), *Ipv4::parse("10.89.0.1"), true,
                  {{"a", "b"}}, {{"com.docker.network.bridge.name", "x"}}};
  auto back = record_from_json(record_to_json(r), "n.json");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->name, "n1");
  EXPECT_EQ(back->created, r.created);
  EXPECT_EQ(back->subnet, r.subnet);
  EXPECT_EQ(back->gateway, r.gateway);
  EXPECT_TRUE(back->internal);
  EXPECT_EQ(back->labels, r.labels);
  EXPECT_EQ(back->options, r.options);
  EXPECT_EQ(r.id.size(), 64u);
  EXPECT_NE(random_hex_id(), r.id);
  EXPECT_EQ(record_from_json("{\"Id\":\"x\"}", "n.json").error().message(),
            "n.json: [json.exception.out_of_range.403] key 'Name' not found");
  EXPECT_EQ(record_from_json("[]", "n.json").error().message(), "n.json: not a JSON object");
}

}  // namespace
}  // namespace sandrun::runner
