// Tests of the value syntaxes shared by the job file and the CLI flags (durations, sizes, ...).
#include <gtest/gtest.h>

#include <limits>

#include "config/job_file.h"

namespace sandrun::config {
namespace {

using std::chrono::milliseconds;

template <typename T>
std::string error_of(const Result<T>& r) {
  return r.ok() ? "(no error)" : r.error().message();
}

int64_t ms(std::string_view text) {
  auto r = parse_duration(text);
  EXPECT_TRUE(r.ok()) << text << ": " << error_of(r);
  return r.ok() ? r->count() : -1;
}

uint64_t bytes(std::string_view text) {
  auto r = parse_size(text);
  EXPECT_TRUE(r.ok()) << text << ": " << error_of(r);
  return r.ok() ? *r : 0;
}

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;

TEST(ValuesTest, DurationAcceptsEachUnitAndCombinations) {
  EXPECT_EQ(ms("500ms"), 500);
  EXPECT_EQ(ms("90s"), 90'000);
  EXPECT_EQ(ms("10m"), 600'000);
  EXPECT_EQ(ms("1h"), 3'600'000);
  EXPECT_EQ(ms("1d"), 86'400'000);
  EXPECT_EQ(ms("1h30m"), 5'400'000);
  EXPECT_EQ(ms("2m30s"), 150'000);
  EXPECT_EQ(ms("1m500ms"), 60'500);
}

TEST(ValuesTest, DurationAcceptsFractions) {
  EXPECT_EQ(ms("1.5s"), 1500);
  EXPECT_EQ(ms("0.25h"), 900'000);
  EXPECT_EQ(ms("1.0005s"), 1001);  // rounded to the nearest millisecond
}

TEST(ValuesTest, DurationRejectsNonsenseWithTheExpectedForm) {
  const char* expected = R"(: expected a number and a unit (ms, s, m, h) like "90s" or "10m")";
  for (const char* text : {"ten", "", "5", "s", "1.s", ".5s", "1S", "1 s", " 1s", "1s ", "1e3s",
                           "1w", "1hh", "1h30"}) {
    EXPECT_EQ(error_of(parse_duration(text)), fmt::format("invalid duration \"{}\"{}", text, expected))
        << text;
  }
}

TEST(ValuesTest, DurationRejectsZeroAndNegative) {
  EXPECT_EQ(error_of(parse_duration("0s")), R"(invalid duration "0s": must be greater than 0)");
  EXPECT_EQ(error_of(parse_duration("0m0s")), R"(invalid duration "0m0s": must be greater than 0)");
  EXPECT_EQ(error_of(parse_duration("-5s")), R"(invalid duration "-5s": must be greater than 0)");
  EXPECT_EQ(error_of(parse_duration("0.4ms")), R"(invalid duration "0.4ms": must be at least 1ms)");
}

TEST(ValuesTest, DurationRejectsOverflowAndMoreThanAYear) {
  EXPECT_EQ(ms("365d"), 365LL * 86'400'000);
  EXPECT_EQ(error_of(parse_duration("366d")),
            R"(invalid duration "366d": too large (the maximum is 8760h))");
  EXPECT_EQ(error_of(parse_duration("99999999999999999999999999h")),
            R"(invalid duration "99999999999999999999999999h": too large (the maximum is 8760h))");
}

TEST(ValuesTest, FormatDurationUsesTheLargestUnitsWithoutTrailingZeros) {
  EXPECT_EQ(format_duration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(format_duration(milliseconds(1000)), "1s");
  EXPECT_EQ(format_duration(milliseconds(600'000)), "10m");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(format_duration(milliseconds(3'600'001)), "1h0.001s");
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(-1500)), "-1.5s");
}

TEST(ValuesTest, FormatDurationOutputParsesBack) {
  for (int64_t v : {1, 999, 1000, 1001, 59'999, 61'250, 3'600'000, 86'399'999}) {
    EXPECT_EQ(ms(format_duration(milliseconds(v))), v) << v;
  }
}

TEST(ValuesTest, SizeAcceptsBytesAndBinaryUnitsInAnyCase) {
  EXPECT_EQ(bytes("1048576"), MiB);
  EXPECT_EQ(bytes("0"), 0u);
  EXPECT_EQ(bytes("100b"), 100u);
  EXPECT_EQ(bytes("64k"), 64 * KiB);
  EXPECT_EQ(bytes("64KB"), 64 * KiB);
  EXPECT_EQ(bytes("64KiB"), 64 * KiB);
  EXPECT_EQ(bytes("512MiB"), 512 * MiB);
  EXPECT_EQ(bytes("512mb"), 512 * MiB);
  EXPECT_EQ(bytes("2G"), 2 * GiB);
  EXPECT_EQ(bytes("1t"), TiB);
  EXPECT_EQ(bytes("512 MiB"), 512 * MiB);  // the form format_size prints
}

TEST(ValuesTest, SizeAcceptsFractionsOfAUnit) {
  EXPECT_EQ(bytes("1.5GiB"), GiB + GiB / 2);
  EXPECT_EQ(bytes("0.5k"), 512u);
  EXPECT_EQ(bytes("1.0001k"), 1024u);  // rounded down to whole bytes
}

TEST(ValuesTest, SizeRejectsUnknownUnitsAndFractionalBytes) {
  const char* expected = R"(: expected a number and a unit (B, KiB, MiB, GiB, TiB) like "512MiB")";
  for (const char* text : {"12XB", "", "MiB", "-1MiB", "1.5", "1.5B", "1,5G", "1 G B", "1e6",
                           "512MiB ", "1PiB"}) {
    EXPECT_EQ(error_of(parse_size(text)), fmt::format("invalid size \"{}\"{}", text, expected)) << text;
  }
}

TEST(ValuesTest, SizeDetectsOverflow) {
  EXPECT_EQ(bytes("18446744073709551615"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(error_of(parse_size("18446744073709551616")),
            R"(invalid size "18446744073709551616": too large (the maximum is 16 EiB))");
  EXPECT_EQ(error_of(parse_size("16777216TiB")),
            R"(invalid size "16777216TiB": too large (the maximum is 16 EiB))");
  EXPECT_EQ(bytes("16777215.5TiB"), 16777215 * TiB + TiB / 2);
  EXPECT_EQ(error_of(parse_size("999999999999999999999999999999999999999999G")),
            R"(invalid size "999999999999999999999999999999999999999999G": too large (the maximum is 16 EiB))");
}

TEST(ValuesTest, MemoryBelowFourMiBIsRefused) {
  EXPECT_EQ(error_of(parse_memory("4KiB")), "4 KiB is below the minimum of 4 MiB");
  EXPECT_EQ(error_of(parse_memory("4097")), "4.0 KiB is below the minimum of 4 MiB");
  EXPECT_EQ(error_of(parse_memory("lots")),
            R"(invalid size "lots": expected a number and a unit (B, KiB, MiB, GiB, TiB) like "512MiB")");
  EXPECT_EQ(*parse_memory("4MiB"), 4 * MiB);
  EXPECT_TRUE(check_memory(kMinMemory).ok());
  EXPECT_EQ(error_of(check_memory(0)), "0 B is below the minimum of 4 MiB");
}

TEST(ValuesTest, FormatSizeUsesBinaryUnitsWithOneDecimalWhenInexact) {
  EXPECT_EQ(format_size(536870912), "512 MiB");
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(100), "100 B");
  EXPECT_EQ(format_size(0), "0 B");
  EXPECT_EQ(format_size(1023), "1023 B");
  EXPECT_EQ(format_size(GiB), "1 GiB");
  EXPECT_EQ(format_size(MiB - 1), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(format_size(std::numeric_limits<uint64_t>::max()), "16.0 EiB");
}

TEST(ValuesTest, CpusAcceptsPositiveDecimals) {
  EXPECT_DOUBLE_EQ(*parse_cpus("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_cpus("2"), 2.0);
  EXPECT_DOUBLE_EQ(*parse_cpus("1.5"), 1.5);
}

TEST(ValuesTest, CpusRejectsZeroNegativeAndNonNumbers) {
  for (const char* text : {"abc", "0", "0.0", "-1", "inf", "nan", "1e3", "", " 1", "1."}) {
    EXPECT_EQ(error_of(parse_cpus(text)),
              fmt::format("invalid cpus \"{}\": expected a number of CPUs greater than 0, like 0.5 or 2",
                          text))
        << text;
  }
}

TEST(ValuesTest, VolumeParsesModesAndResolvesRelativeHostPaths) {
  auto v = parse_volume("./cache:/cache:ro", "/work/repo");
  ASSERT_TRUE(v.ok()) << error_of(v);
  EXPECT_EQ(v->source, "/work/repo/cache");
  EXPECT_EQ(v->target, "/cache");
  EXPECT_TRUE(v->readonly);

  v = parse_volume("/data:/data/:rw", "/work/repo");
  ASSERT_TRUE(v.ok()) << error_of(v);
  EXPECT_EQ(v->source, "/data");
  EXPECT_EQ(v->target, "/data");
  EXPECT_FALSE(v->readonly);

  v = parse_volume("../shared/x:/x", "/work/repo");
  ASSERT_TRUE(v.ok()) << error_of(v);
  EXPECT_EQ(v->source, "/work/shared/x");
  EXPECT_FALSE(v->readonly);
}

TEST(ValuesTest, VolumeErrorsNameTheProblem) {
  EXPECT_EQ(error_of(parse_volume("x", "/b")), R"(invalid volume "x": expected HOST:CONTAINER[:ro|:rw])");
  EXPECT_EQ(error_of(parse_volume(":/x", "/b")), R"(invalid volume ":/x": expected HOST:CONTAINER[:ro|:rw])");
  EXPECT_EQ(error_of(parse_volume("a:", "/b")), R"(invalid volume "a:": expected HOST:CONTAINER[:ro|:rw])");
  EXPECT_EQ(error_of(parse_volume("a:/b:ro:x", "/b")),
            R"(invalid volume "a:/b:ro:x": expected HOST:CONTAINER[:ro|:rw])");
  EXPECT_EQ(error_of(parse_volume("a:b", "/b")), R"(volume "a:b": container path "b" must be absolute)");
  EXPECT_EQ(error_of(parse_volume("a:/b:x", "/b")), R"(volume "a:/b:x": mode "x" must be "ro" or "rw")");
  EXPECT_EQ(error_of(parse_volume("a:/x/../etc", "/b")),
            R"(volume "a:/x/../etc": container path "/x/../etc" must not contain "..")");
  EXPECT_EQ(error_of(parse_volume("a:/", "/b")), R"(volume "a:/": container path must not be "/")");
  EXPECT_EQ(error_of(parse_volume("a:/./", "/b")), R"(volume "a:/./": container path must not be "/")");
}

TEST(ValuesTest, EnvFlagSplitsAtTheFirstEquals) {
  auto e = parse_env("A=b=c");
  ASSERT_TRUE(e.ok()) << error_of(e);
  EXPECT_EQ(e->first, "A");
  EXPECT_EQ(e->second, "b=c");
  e = parse_env("EMPTY=");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->second, "");
}

TEST(ValuesTest, EnvFlagNeedsANameAndAnEquals) {
  EXPECT_EQ(error_of(parse_env("NAME")), R"(invalid environment variable "NAME": expected NAME=value)");
  EXPECT_EQ(error_of(parse_env("=x")), R"(invalid environment variable "=x": expected NAME=value)");
  using namespace std::string_literals;
  EXPECT_EQ(error_of(parse_env("A\0B=1"s)),
            "invalid variable name \"A\\x00B\": must not contain a NUL character"s);
  // Issue 15 item 11: a control character in a name is refused, shown escaped.
  EXPECT_EQ(error_of(parse_env("A\nB=1")),
            "invalid variable name \"A\\x0aB\": must not contain control characters (\"\\x0a\" at byte 1)");
}

TEST(ValuesTest, EnvNameRules) {
  EXPECT_TRUE(check_env_name("PATH").ok());
  EXPECT_TRUE(check_env_name("weird.name-1").ok());
  EXPECT_EQ(error_of(check_env_name("")), R"(invalid variable name "": must not be empty)");
  EXPECT_EQ(error_of(check_env_name("A=B")), R"(invalid variable name "A=B": must not contain '=')");
}

TEST(ValuesTest, NetworkIsNonePrivateOrHost) {
  EXPECT_EQ(*parse_network("none"), Network::none);
  EXPECT_EQ(*parse_network("private"), Network::private_);
  EXPECT_EQ(*parse_network("host"), Network::host);
  EXPECT_EQ(error_of(parse_network("bridge")), R"(invalid network "bridge": expected "none", "private" or "host")");
  EXPECT_EQ(error_of(parse_network("Host")), R"(invalid network "Host": expected "none", "private" or "host")");
}

TEST(ValuesTest, PullPolicyIsNeverMissingOrAlways) {
  EXPECT_EQ(*parse_pull_policy("never"), PullPolicy::never);
  EXPECT_EQ(*parse_pull_policy("missing"), PullPolicy::missing);
  EXPECT_EQ(*parse_pull_policy("always"), PullPolicy::always);
  EXPECT_EQ(error_of(parse_pull_policy("if-not-present")),
            R"(invalid pull policy "if-not-present": expected "never", "missing" or "always")");
}

TEST(ValuesTest, JobNameRules) {
  for (std::string name : std::vector<std::string>{"a", "build", "Build_1", "_x", "0", "test.unit-2",
                                                   std::string(63, 'a')}) {
    EXPECT_TRUE(check_job_name(name).ok()) << name;
  }
  const char* rules = ": use letters, digits, '_', '-' and '.' (starting with a letter, digit or '_'), "
                      "at most 63 characters";
  std::string too_long(64, 'a');
  for (std::string name : std::vector<std::string>{"a b", "", "-x", ".x", "a/b", "ü", too_long}) {
    EXPECT_EQ(error_of(check_job_name(name)), fmt::format("invalid job name \"{}\"{}", name, rules)) << name;
  }
}

TEST(ValuesTest, SourcePosRendersFileLineColumnOrJustTheFile) {
  EXPECT_EQ((SourcePos{"jobs.toml", 4, 9}.str()), "jobs.toml:4:9");
  EXPECT_EQ((SourcePos{"jobs.toml", 0, 0}.str()), "jobs.toml");
}

TEST(ValuesTest, CpusetListsTheCpusSortedWithoutDuplicates) {
  using Cpus = std::vector<unsigned>;
  auto cpus = [](std::string_view text) {
    auto r = parse_cpuset(text);
    EXPECT_TRUE(r.ok()) << text << ": " << error_of(r);
    return r.ok() ? *r : Cpus{};
  };
  EXPECT_EQ(cpus("0"), (Cpus{0}));
  EXPECT_EQ(cpus("0-1,3"), (Cpus{0, 1, 3}));
  EXPECT_EQ(cpus("3,0-1,1"), (Cpus{0, 1, 3}));
  EXPECT_EQ(cpus("2-2"), (Cpus{2}));
  EXPECT_EQ(cpus("007"), (Cpus{7}));
  EXPECT_EQ(cpus("0-1023").size(), 1024u);
  EXPECT_EQ(cpus("1023"), (Cpus{1023}));
}

TEST(ValuesTest, CpusetRejectsOtherSyntaxRangesBackwardsAndLargeCpus) {
  const char* expected = R"(: expected CPU numbers and ranges like "0-3" or "0,2,4-7")";
  for (const char* text : {"", ",", "1,", ",1", "1,,2", "1-", "-1", "a", " 1", "1 ", "0-1, 3", "1-2-3",
                           "+1", "1.5", "0x1", "1;2"}) {
    EXPECT_EQ(error_of(parse_cpuset(text)), fmt::format("invalid cpuset \"{}\"{}", text, expected)) << text;
  }
  EXPECT_EQ(error_of(parse_cpuset("3-1")), R"(invalid cpuset "3-1": range 3-1 ends before it starts)");
  EXPECT_EQ(error_of(parse_cpuset("1024")),
            R"(invalid cpuset "1024": CPU 1024 is above the maximum of 1023)");
  EXPECT_EQ(error_of(parse_cpuset("0,2-4096")),
            R"(invalid cpuset "0,2-4096": CPU 4096 is above the maximum of 1023)");
  EXPECT_EQ(error_of(parse_cpuset("99999999999999999999999")),
            R"(invalid cpuset "99999999999999999999999": CPU 99999999999999999999999 is above the maximum of 1023)");
}

TEST(ValuesTest, NofileIsOneNumberOrSoftColonHard) {
  using Pair = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(*parse_nofile("4096"), (Pair{4096, 4096}));
  EXPECT_EQ(*parse_nofile("1024:4096"), (Pair{1024, 4096}));
  EXPECT_EQ(*parse_nofile("1:1"), (Pair{1, 1}));
  EXPECT_EQ(*parse_nofile("2147483584"), (Pair{kMaxNofile, kMaxNofile}));
  EXPECT_EQ(*parse_nofile("64:2147483584"), (Pair{64, kMaxNofile}));
}

TEST(ValuesTest, NofileErrorsSayWhatIsWrong) {
  const char* expected = R"(: expected SOFT[:HARD] numbers of open files, like "4096" or "1024:4096")";
  for (const char* text : {"", "a", ":5", "5:", "-1", "1:2:3", " 1", "1 ", "1k", "1.5", "1024/4096"}) {
    EXPECT_EQ(error_of(parse_nofile(text)), fmt::format("invalid nofile \"{}\"{}", text, expected)) << text;
  }
  EXPECT_EQ(error_of(parse_nofile("0")), R"(invalid nofile "0": must be at least 1)");
  EXPECT_EQ(error_of(parse_nofile("0:5")), R"(invalid nofile "0:5": must be at least 1)");
  EXPECT_EQ(error_of(parse_nofile("4096:1024")),
            R"(invalid nofile "4096:1024": the soft limit 4096 is above the hard limit 1024)");
  EXPECT_EQ(error_of(parse_nofile("2147483585")),
            R"(invalid nofile "2147483585": too large (the maximum is 2147483584))");
  EXPECT_EQ(error_of(parse_nofile("1:99999999999999999999999")),
            R"(invalid nofile "1:99999999999999999999999": too large (the maximum is 2147483584))");
  EXPECT_EQ(error_of(check_nofile(8, 4, "8:4")), "invalid nofile 8:4: the soft limit 8 is above the hard limit 4");
  EXPECT_TRUE(check_nofile(4, 8, "4:8").ok());
}

TEST(ValuesTest, SeccompIsDefaultUnconfinedOrAnAbsolutePath) {
  EXPECT_EQ(*parse_seccomp("default", "/base"), "default");
  EXPECT_EQ(*parse_seccomp("unconfined", "/base"), "unconfined");
  EXPECT_EQ(*parse_seccomp("ci/profile.json", "/base"), "/base/ci/profile.json");
  EXPECT_EQ(*parse_seccomp("./default", "/base"), "/base/default");  // a file named "default"
  EXPECT_EQ(*parse_seccomp("/etc/x/../p.json", "/base"), "/etc/p.json");
  EXPECT_EQ(error_of(parse_seccomp("", "/base")),
            R"(invalid seccomp profile "": expected "default", "unconfined" or the path of a profile file)");
}

TEST(ValuesTest, CapabilityNamesMustNotBeEmpty) {
  EXPECT_TRUE(check_capability("NET_ADMIN").ok());
  EXPECT_TRUE(check_capability("ALL").ok());
  EXPECT_EQ(error_of(check_capability("")), R"(invalid capability "": expected a name like "NET_ADMIN" or "ALL")");
}

TEST(ValuesTest, BooleansAreTrueOrFalse) {
  EXPECT_EQ(*parse_bool("true"), true);
  EXPECT_EQ(*parse_bool("false"), false);
  for (const char* text : {"", "1", "yes", "True", "FALSE"}) {
    EXPECT_EQ(error_of(parse_bool(text)), fmt::format("invalid boolean \"{}\": expected true or false", text));
  }
}

}  // namespace
}  // namespace sandrun::config
