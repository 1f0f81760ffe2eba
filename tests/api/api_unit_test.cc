// The Engine API's parser, routes and messages without a daemon.
#include <gtest/gtest.h>

#include <set>

#include "runner/api/client.h"
#include "runner/api/http_parser.h"
#include "runner/api/query.h"
#include "runner/api/routes.h"

namespace sandrun::runner::api {
namespace {

using Kind = RequestParser::Kind;

TEST(RequestParserTest, PipelinedRequestsComeOneAtATime) {
  RequestParser p;
  const std::string in = "GET /_ping HTTP/1.1\r\nHost: a\r\n\r\nHEAD /v1.43/_ping HTTP/1.1\r\nX-A: b\r\n\r\n";
  auto s = p.feed(in.data(), in.size());
  ASSERT_EQ(s.kind, Kind::request);
  Request r = p.take();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/_ping");
  EXPECT_EQ(r.header("host").value_or(""), "a");
  EXPECT_TRUE(r.keep_alive);
  auto s2 = p.feed(in.data() + s.consumed, in.size() - s.consumed);
  ASSERT_EQ(s2.kind, Kind::request);
  EXPECT_EQ(s.consumed + s2.consumed, in.size());
  r = p.take();
  EXPECT_EQ(r.method, "HEAD");
  EXPECT_EQ(r.header("X-a").value_or(""), "b");
}

TEST(RequestParserTest, ChunkedBodyIsKeptWhenAskedAndCountedElse) {
  RequestParser p;
  p.keep_body = [](const Request& r) { return r.target == "/keep"; };
  const std::string in = "POST /keep HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                         "POST /drop HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz";
  auto s = p.feed(in.data(), in.size());
  ASSERT_EQ(s.kind, Kind::request);
  EXPECT_EQ(p.take().body, "abcde");
  s = p.feed(in.data() + s.consumed, in.size() - s.consumed);
  ASSERT_EQ(s.kind, Kind::request);
  Request r = p.take();
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.body_bytes, 3u);
  EXPECT_FALSE(r.keep_alive);
}

TEST(RequestParserTest, ByteByByteIsTheSame) {
  RequestParser p;
  const std::string in = "GET /info?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
  size_t i = 0;
  RequestParser::Step s;
  for (; i < in.size(); ++i) {
    s = p.feed(in.data() + i, 1);
    if (s.kind != Kind::more) break;
    EXPECT_TRUE(p.in_request());
  }
  ASSERT_EQ(s.kind, Kind::request);
  EXPECT_EQ(i, in.size() - 1);
  EXPECT_EQ(p.take().target, "/info?x=1");
  EXPECT_FALSE(p.in_request());
}

TEST(RequestParserTest, BoundsAre431And413) {
  {
    RequestParser p(ParserLimits{.header_bytes = 100});
    const std::string in = "GET /_ping HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
    auto s = p.feed(in.data(), in.size());
    EXPECT_EQ(s.kind, Kind::error);
    EXPECT_EQ(s.status, 431);
  }
  {
    RequestParser p(ParserLimits{.headers = 3});
    const std::string in = "GET /_ping HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n";
    auto s = p.feed(in.data(), in.size());
    EXPECT_EQ(s.status, 431);
    EXPECT_EQ(s.message, "more than 3 request headers");
  }
  {
    RequestParser p(ParserLimits{.body_bytes = 4});
    const std::string in = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
    auto s = p.feed(in.data(), in.size());
    EXPECT_EQ(s.status, 413);
  }
  {
    RequestParser p(ParserLimits{.body_bytes = 4});
    const std::string in = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n";
    auto s = p.feed(in.data(), in.size());
    EXPECT_EQ(s.status, 413);
  }
}

TEST(RequestParserTest, MalformedIs400WithTheReason) {
  RequestParser p;
  const std::string in = "GET /_ping HTTP/1.1\r\nHost a\r\n\r\n";
  auto s = p.feed(in.data(), in.size());
  EXPECT_EQ(s.kind, Kind::error);
  EXPECT_EQ(s.status, 400);
  EXPECT_TRUE(s.message.starts_with("malformed HTTP request: ")) << s.message;
}

TEST(RoutesTest, VersionPrefixes) {
  auto t = std::get<Target>(parse_target("/v1.43/containers/json?all=1"));
  EXPECT_EQ(t.version, "1.43");
  EXPECT_EQ(t.minor, 43);
  EXPECT_EQ(t.path, "/containers/json");
  EXPECT_EQ(t.query, "all=1");
  t = std::get<Target>(parse_target("/info"));
  EXPECT_EQ(t.version, "1.47");
  EXPECT_EQ(t.path, "/info");
  t = std::get<Target>(parse_target("/vfoo/info"));  // not a version: an unknown path
  EXPECT_EQ(t.path, "/vfoo/info");
  EXPECT_EQ(std::get<Response>(parse_target("/v1.48/info")).status, 400);
  EXPECT_EQ(std::get<Response>(parse_target("/v1.23/info")).status, 400);
  EXPECT_EQ(std::get<Response>(parse_target("/v1..2/info")).status, 400);
  EXPECT_EQ(std::get<Response>(parse_target("/a/%2e%2e/b")).status, 400);
  EXPECT_EQ(std::get<Response>(parse_target("/a%zz")).status, 400);
  EXPECT_EQ(std::get<Target>(parse_target("http://docker/v1.41/_ping")).path, "/_ping");
}

TEST(RoutesTest, MatchTakesImageNamesWithSlashes) {
  Match m = match_route("GET", "/images/127.0.0.1:5000/team/app:1/json");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/images/{name*}/json");
  EXPECT_EQ(m.params["name"], "127.0.0.1:5000/team/app:1");
  m = match_route("DELETE", "/images/a/b");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params["name"], "a/b");
  m = match_route("POST", "/containers/abc/start");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params["id"], "abc");
  EXPECT_EQ(match_route("GET", "/containers/abc/start").route, nullptr);
  EXPECT_EQ(match_route("GET", "/containers//json").route, nullptr);
  EXPECT_EQ(match_route("HEAD", "/_ping").route->id, RouteId::ping);
}

TEST(RoutesTest, EveryRouteIsUniqueAndStartsWithASlash) {
  std::set<std::string> seen;
  for (const Route& r : docker_routes()) {
    EXPECT_TRUE(r.pattern.starts_with("/")) << r.pattern;
    EXPECT_TRUE(seen.insert(std::string(r.method) + " " + std::string(r.pattern)).second) << r.pattern;
    // Every route sandrun serves or will serve (issue 16's subset) has its handler's id; the
    // routes it never serves have none.
    EXPECT_EQ(r.state == RouteState::unsupported, r.id == RouteId::other) << r.pattern;
  }
}

TEST(MessagesTest, HeadKeepsTheLengthAndDropsTheBody) {
  Response r = Response::error(404, "page not found");
  const std::string get = serialize(r, false, "s");
  const std::string head = serialize(r, true, "s");
  EXPECT_TRUE(get.ends_with("\r\n\r\n{\"message\":\"page not found\"}\n")) << get;
  EXPECT_TRUE(head.ends_with("Content-Length: 29\r\n\r\n")) << head;
  EXPECT_TRUE(get.starts_with("HTTP/1.1 404 Not Found\r\n"));
}

TEST(QueryTest, ParametersAreDecodedAndDockersBooleansRead) {
  const auto q = Query::parse("all=1&name=a%2Fb+c&x=&t=True&n=12&bad=1x&name=second");
  EXPECT_TRUE(q.flag("all"));
  EXPECT_TRUE(q.flag("t"));
  EXPECT_FALSE(q.flag("x"));             // present, not a true value
  EXPECT_TRUE(q.flag("absent", true));   // absent: the fallback
  EXPECT_EQ(q.get("name"), "a/b c");
  EXPECT_EQ(q.all("name"), (std::vector<std::string>{"a/b c", "second"}));
  EXPECT_EQ(q.integer("n", 0).value(), 12);
  EXPECT_EQ(q.integer("absent", -1).value(), -1);
  ASSERT_FALSE(q.integer("bad", 0));
  EXPECT_NE(q.integer("bad", 0).error().message().find("invalid value for bad"), std::string::npos);
}

TEST(QueryTest, FiltersComeInBothOfDockersFormsAndUnknownKeysAreRefused) {
  auto f = parse_filters(Query::parse("filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%2C%22status%22%3A%7B%22running%22%3Atrue%7D%7D"));
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->at("label"), (std::vector<std::string>{"a=b"}));
  EXPECT_EQ(f->at("status"), (std::vector<std::string>{"running"}));
  auto bad = parse_filters(Query::parse("filters=%7B%22nope%22%3A%5B%5D%7D"), {"label", "status"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "invalid filter 'nope'");
  EXPECT_FALSE(parse_filters(Query::parse("filters=%5B1%5D")));
  EXPECT_TRUE(labels_match({"a=b", "c"}, {{"a", "b"}, {"c", "anything"}}));
  EXPECT_FALSE(labels_match({"a=b", "c"}, {{"a", "b"}}));
  EXPECT_FALSE(labels_match({"a=x"}, {{"a", "b"}}));
}

TEST(ResponseParserTest, ChunkedBodiesComeDecodedInAnyPieces) {
  std::string body;
  int status = 0;
  ResponseParser p([&](const ResponseParser::Head& h) { status = h.status; }, [&](std::string_view b) { body += b; });
  const std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (char c : in) ASSERT_TRUE(p.feed(&c, 1));  // one byte at a time
  EXPECT_TRUE(p.complete());
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "abcde");
}

TEST(ResponseParserTest, ABodyWithoutLengthEndsAtCloseAndAnUpgradeLeavesTheRest) {
  std::string body;
  ResponseParser p(nullptr, [&](std::string_view b) { body += b; });
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nraw bytes";
  ASSERT_TRUE(p.feed(in.data(), in.size()));
  EXPECT_FALSE(p.complete());
  ASSERT_TRUE(p.finish());
  EXPECT_EQ(body, "raw bytes");

  ResponseParser u(nullptr, nullptr);
  const std::string up = std::string("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n") +
                         std::string("\x01\0\0\0\0\0\0\x02hi", 10);
  std::string rest;
  ASSERT_TRUE(u.feed(up.data(), up.size(), &rest));
  EXPECT_TRUE(u.complete());
  EXPECT_TRUE(u.upgraded());
  EXPECT_EQ(rest.size(), 10u);

  ResponseParser bad(nullptr, nullptr);
  EXPECT_FALSE(bad.feed("NOT HTTP\r\n\r\n", 14));
  ResponseParser cut(nullptr, nullptr);
  ASSERT_TRUE(cut.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 43));
  EXPECT_FALSE(cut.finish());  // closed before the 10 bytes
}

TEST(StreamDemuxTest, FramesAreSplitByStreamWhateverTheReadsCutThem) {
  std::string frames;
  auto frame = [&](char stream, std::string_view b) {
    frames += stream;
    frames += std::string("\0\0\0", 3);
    const uint32_t n = static_cast<uint32_t>(b.size());
    frames += static_cast<char>(n >> 24);
    frames += static_cast<char>(n >> 16);
    frames += static_cast<char>(n >> 8);
    frames += static_cast<char>(n);
    frames += b;
  };
  frame(1, "out\n");
  frame(2, "err\n");
  frame(1, std::string(70000, 'x'));
  StreamDemux d;
  std::string out, err;
  for (size_t i = 0; i < frames.size(); i += 7)
    d.feed(std::string_view(frames).substr(i, 7), [&](int s, std::string_view b) { (s == 2 ? err : out) += b; });
  EXPECT_EQ(out, "out\n" + std::string(70000, 'x'));
  EXPECT_EQ(err, "err\n");
}

}  // namespace
}  // namespace sandrun::runner::api
