// The malformed-request corpus (corpus/*.http, made by corpus/make_corpus.py) against a real
// daemon: each request is answered 4xx or its connection closed, and the daemon goes on.
#include <dirent.h>
#include <sys/socket.h>

#include <algorithm>

#include "tests/api/serve_fixture.h"

namespace sandrun::testing {
namespace {

std::vector<std::string> corpus_files() {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(SANDRUN_TEST_API_CORPUS)) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 5 && name.ends_with(".http")) out.push_back(std::string(SANDRUN_TEST_API_CORPUS) + "/" + name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(ServeTest, MalformedCorpusIsAnswered4xxOrClosed) {
  const auto files = corpus_files();
  ASSERT_GE(files.size(), 50u) << SANDRUN_TEST_API_CORPUS;
  start();
  for (const std::string& file : files) {
    int fd = connect_unix(socket());
    ASSERT_GE(fd, 0) << file << ": the daemon stopped answering";
    send_all(fd, read_file(file));
    ::shutdown(fd, SHUT_WR);  // the end of the input: an incomplete request ends there
    const std::string raw = read_to_eof(fd, std::chrono::seconds(20));
    ::close(fd);
    for (const HttpReply& r : parse_replies(raw)) {
      EXPECT_TRUE(r.status >= 400 && r.status < 500) << file << ": " << r.status << " " << r.body;
    }
    if (!raw.empty()) EXPECT_TRUE(raw.starts_with("HTTP/1.1 4")) << file << ": " << raw.substr(0, 200);
  }
  EXPECT_TRUE(serving());
  CommandResult r = stop();
  EXPECT_EQ(r.status, 0) << r.err;
}

}  // namespace
}  // namespace sandrun::testing
