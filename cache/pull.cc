// Pulling an image into the store: the registry client (registry.h) feeds import_image
// (image_import.h). Each layer the store lacks streams from its download straight into its
// extraction (a socket pair between two threads), several layers at once; the digests are
// checked by both ends, and nothing is committed unless everything matched.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "cache/digest.h"
#include "cache/image_import.h"
#include "cache/index.h"
#include "cache/layout.h"
#include "cache/registry.h"
#include "cache/store.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

Result<void> send_all(int fd, std::string_view data, const std::string& digest) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("hand the download of layer {} to its extraction", digest);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// PullOptions::progress, one call at a time.
class Progress {
 public:
  explicit Progress(const std::function<void(const PullEvent&)>& f) : f_(f) {}
  void operator()(PullEvent::Kind kind, const std::string& digest, uint64_t size = 0) {
    if (!f_) return;
    std::lock_guard lock(mu_);
    f_(PullEvent{kind, digest, size});
  }

 private:
  const std::function<void(const PullEvent&)>& f_;
  std::mutex mu_;
};

class RegistryLayerReader : public LayerReader {
 public:
  RegistryLayerReader(RegistryClient& client, const std::vector<oci::Descriptor>& layers, unsigned parallel,
                      std::atomic<bool>& cancel, Progress& progress)
      : client_(client), layers_(layers), parallel_(std::max(1u, parallel)), cancel_(cancel), progress_(progress) {}

  Result<void> read_layers(const std::vector<size_t>& wanted, const Consume& consume) override {
    called_ = true;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const bool want = std::find(wanted.begin(), wanted.end(), i) != wanted.end();
      progress_(want ? PullEvent::Kind::layer_started : PullEvent::Kind::layer_exists, layers_[i].digest, layers_[i].size);
    }
    // The first failure stops the other downloads too.
    return for_each_parallel(wanted, parallel_, [&](size_t i) { return one(i, consume); }, [&] { cancel_ = true; });
  }
  // Whether the importer asked for any layer (else the store had them all).
  bool called() const { return called_; }

 private:
  // Layer i: the download in this thread, its extraction in another, joined by a socket pair.
  Result<void> one(size_t i, const Consume& consume) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
      return Error::sys("create a socket pair for layer {}", layers_[i].digest);
    UniqueFd out(sv[1]);
    Result<void> consumed;
    std::atomic<bool> consumer_done{false};
    std::thread consumer([&, in = sv[0]] {
      consumed = consume(i, fd_reader(in));
      consumer_done = true;
      ::close(in);  // a download still running gets EPIPE and stops
    });
    const oci::Descriptor& d = layers_[i];
    // When the extraction gives up (bad data), the download still runs to its end, into
    // nothing: its digest then tells a tampered blob (the cause to report) from a bad image.
    bool draining = false;
    auto fetched = client_.fetch_blob({d.media_type, d.digest, d.size}, [&](std::string_view chunk) -> Result<void> {
      if (draining) return {};
      auto sent = send_all(out.get(), chunk, d.digest);
      if (sent || !consumer_done) return sent;
      draining = true;
      return {};
    });
    if (fetched) progress_(PullEvent::Kind::layer_downloaded, d.digest, d.size);
    out.reset();  // end of file for the extraction
    consumer.join();
    if (!fetched) return std::move(fetched).error();
    if (!consumed) return std::move(consumed).error();
    progress_(PullEvent::Kind::layer_done, d.digest, d.size);
    return {};
  }

  RegistryClient& client_;
  const std::vector<oci::Descriptor>& layers_;
  unsigned parallel_;
  std::atomic<bool>& cancel_;
  Progress& progress_;
  bool called_ = false;
};

// The record the store has for `ref` when it is complete and has manifest `digest`.
std::optional<ImageRecord> complete_record(const Layout& layout, const ImageRef& ref, const std::string& digest) {
  auto lock = lock_cache(layout, false);
  if (!lock) return std::nullopt;
  auto index = load_index(layout);
  if (!index) return std::nullopt;
  ImageRef slot = ref;
  if (!slot.digest.empty()) slot.digest = digest;
  const ImageRecord* r = index->find(slot);
  if (!r || r->manifest_digest != digest) return std::nullopt;
  struct stat st;
  for (const auto& l : r->layers) {
    if (::stat(layout.layer_path(l.diff_id).c_str(), &st) < 0 || ::stat(layout.blob_path(l.blob_digest).c_str(), &st) < 0)
      return std::nullopt;
  }
  return *r;
}

}  // namespace

Result<PulledImage> Store::pull(std::string_view text, const PullOptions& options) {
  ImageRef ref = SANDRUN_TRY(parse_ref(text));
  Layout layout(root_);
  // One pull of a name at a time, across processes: the second finds the first's layers.
  const std::string locks = fs::join(root_, "locks");
  if (::mkdir(locks.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("create {}", locks);
  UniqueFd pull_lock = SANDRUN_TRY(fs::lock_file(fs::join(locks, "pull-" + std::string(digest_hex(sha256_of(ref.name)))), true));

  std::atomic<bool> cancel{false};
  // The caller's cancel flag stops the transfers too (checked by curl's progress callback).
  if (options.cancel && options.cancel->load()) return Error::msg("pull {}: cancelled", ref.str());
  Progress progress(options.progress);
  RegistryOptions ro;
  ro.insecure_hosts = options.insecure_hosts;
  ro.auth_file = options.auth_file;
  ro.ca_file = options.ca_file;
  if (!options.platform.empty()) ro.platform = options.platform;
  ro.parallel = options.parallel;
  ro.cancel = &cancel;
  ro.cancel_also = options.cancel;
  ro.login = options.login;
  RegistryClient client = SANDRUN_TRY(RegistryClient::create(ref, ro));
  PulledManifest m = SANDRUN_TRY(client.resolve());
  progress(PullEvent::Kind::resolved, m.digest);
  PulledImage out;
  if (auto have = complete_record(layout, ref, m.digest)) {
    out.record = std::move(*have);
    out.up_to_date = true;
    out.stats.layers_reused = out.record.layers.size();
    return out;
  }
  SourceImage image;
  image.what = ref.str();
  image.manifest = m.bytes;
  image.manifest_digest = m.digest;
  image.manifest_media_type = m.media_type;
  image.config_digest = m.config.digest;
  // A config the store has (another tag of the same image) is not fetched again, unless it no
  // longer matches its digest.
  auto local_config = fs::read_file(layout.blob_path(m.config.digest));
  const bool intact = local_config && sha256_of(*local_config) == m.config.digest;
  image.config = intact ? std::move(*local_config) : SANDRUN_TRY(client.fetch_config(m.config));
  for (const auto& l : m.layers) image.layers.push_back({l.media_type, l.digest, l.size, std::nullopt, "", ""});
  ImageRef record_ref = ref;
  if (!record_ref.digest.empty()) record_ref.digest = m.digest;
  RegistryLayerReader reader(client, image.layers, options.parallel, cancel, progress);
  auto imported = import_image(layout, record_ref, image, reader, limits_);
  if (!imported) return std::move(imported).error();
  if (!reader.called())
    for (const auto& l : image.layers) progress(PullEvent::Kind::layer_exists, l.digest, l.size);
  out.record = std::move(imported->record);
  out.stats = imported->stats;
  return out;
}

}  // namespace sandrun::cache
