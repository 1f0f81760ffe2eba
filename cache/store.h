// The image store: content-addressed blobs, unpacked read-only layers, and image records.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::cache {

// What the image says about how to run it (the OCI image config's "config" object).
struct ImageConfig {
  std::vector<std::string> env;         // "NAME=value"
  std::string working_dir;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string user;
};

struct LayerRef {
  std::string diff_id;      // "sha256:<hex>" of the uncompressed tar; names the unpacked layer
  std::string blob_digest;  // "sha256:<hex>" of the stored blob (the tarball as imported)
  uint64_t blob_size = 0;
  uint64_t unpacked_size = 0;
  std::string media_type;   // of the blob, as its manifest says (OCI or Docker layer types)
};

struct ImageRecord {
  std::string name;                  // "busybox", "127.0.0.1:5000/team/builder"
  std::string tag;                   // "latest"; empty for an image pulled by digest only
  std::string id;                    // "sha256:<hex>" of the image config blob
  std::string manifest_digest;       // "sha256:<hex>" of the manifest blob (also stored)
  std::string manifest_media_type;   // OCI or Docker schema2 manifest
  std::vector<LayerRef> layers;      // bottom first
  ImageConfig config;
  int64_t created = 0;               // unix seconds of import
  // "name:tag", or "name@sha256:..." for an image known by digest only.
  std::string ref() const { return tag.empty() ? name + "@" + manifest_digest : name + ":" + tag; }
};

// A parsed image reference: "busybox" -> {busybox, latest}; "team/builder:1.4";
// "127.0.0.1:5000/team/builder:1.4"; "127.0.0.1:5000/team/builder@sha256:<64 hex>"; rejects
// junk. The name includes the registry host when there is one (as Docker names local images).
// A name without a host ("team/builder") is local only: sandrun has no default registry.
struct ImageRef {
  std::string name;    // "127.0.0.1:5000/team/builder"
  std::string tag;     // "1.4"; "latest" when neither tag nor digest is given; empty with a digest
  std::string digest;  // "sha256:<64 hex>" of the manifest, or empty
  // "name:tag", or "name@digest" for a digest reference.
  std::string str() const { return digest.empty() ? name + ":" + tag : name + "@" + digest; }
  // The registry host ("127.0.0.1:5000", "localhost", "ghcr.io"), or empty for a local name.
  std::string registry() const;
  // The name without the registry host: "team/builder".
  std::string repository() const;
};
Result<ImageRef> parse_ref(std::string_view text);

// Shared locks on the layer directories of an image, held while containers use them so that
// `image rm` in another process never deletes a layer under a running container.
class LayerLease {
 public:
  LayerLease() = default;
  explicit LayerLease(std::vector<UniqueFd> fds) : fds_(std::move(fds)) {}
 private:
  std::vector<UniqueFd> fds_;
};

struct RemoveReport {
  std::string ref;
  std::vector<std::string> removed_layers;  // diff ids deleted
  std::vector<std::string> kept_in_use;     // unreferenced but leased by a running sandrun
};

struct PruneOptions {
  bool all = false;                   // every image no running sandrun uses, not only untagged
  std::optional<uint64_t> max_size;   // evict least recently used images until under this
};

struct PruneReport {
  std::vector<std::string> removed_images;  // refs
  std::vector<std::string> kept_in_use;     // refs of images a running sandrun uses
  size_t layers_removed = 0;
  size_t blobs_removed = 0;
  uint64_t bytes_freed = 0;                 // file data of the layers and blobs deleted
  uint64_t size_after = 0;                  // what the cache holds afterwards
};

struct VerifyReport {
  size_t images = 0, blobs = 0, layers = 0;  // what was checked
  std::vector<std::string> problems;         // one line each; empty: all is well
  std::vector<std::string> layers_dropped;   // corrupted layers removed (re-import/pull them)
};

struct SaveOptions {
  bool zstd = false;  // recompress every layer as tar+zstd (else kept as stored)
};

// overlayfs stacks at most this many lower layers (the kernel's OVL_MAX_STACK; the sandbox
// checks it again as it mounts, sandbox/plan.cc kMaxLayers): an image with more cannot run,
// so import and pull refuse it.
inline constexpr size_t kMaxImageLayers = 500;

// Caps on what an image may unpack to, checked by import and pull (and verify's fresh
// extraction) as each layer's entries are read: the operator's [policy] keys of the same
// names. Bytes are apparent sizes (a sparse entry counts whole). A layer cap of 0 leaves only
// the image's.
struct ImageLimits {
  uint64_t max_image_bytes = uint64_t{64} << 30;
  uint64_t max_image_entries = 2'000'000;
  uint64_t max_layer_bytes = 0;
  uint64_t max_layer_entries = 0;
};

struct ImportStats {
  size_t layers_unpacked = 0;  // read and extracted by this import
  size_t layers_reused = 0;    // already in the store: not read at all
  uint64_t bytes_read = 0;     // blob bytes read from the source
};

struct ImportedImage {
  ImageRecord record;
  ImportStats stats;
};

struct ImportOptions {
  std::string platform;   // "os/arch[/variant]" to pick from a multi-platform index; "" = host
  unsigned parallel = 2;  // layers unpacked at once
};

// What a pull is doing, for a progress display (Docker's pull messages). `digest` is the
// manifest's for `resolved`, a layer blob's for the others.
struct PullEvent {
  enum class Kind {
    resolved,         // the manifest is known (the first event; nothing is downloaded before)
    layer_exists,     // the store has this layer: not downloaded
    layer_started,    // this layer is being downloaded (and unpacked as it arrives)
    layer_downloaded, // every byte of it arrived and matched its digest
    layer_done,       // unpacked and verified
  };
  Kind kind;
  std::string digest;
  uint64_t size = 0;  // the blob's size, for the layer events
};

// Credentials given with the request (Docker's X-Registry-Auth), used instead of the file's.
struct RegistryLogin {
  std::string username;
  std::string password;
};

// Where and how images are pulled (cache/registry.h has the details of each).
struct PullOptions {
  std::vector<std::string> insecure_hosts;  // reached over plain HTTP ("127.0.0.1:5000")
  std::string auth_file;                    // Docker config.json; "" = the usual places
  std::string ca_file;                      // CA certificates for HTTPS; "" = the system's
  std::string platform;                     // "os/arch[/variant]"; "" = the host's
  unsigned parallel = 4;                    // layers downloaded (and unpacked) at once
  std::optional<RegistryLogin> login;       // set: these credentials, not the file's
  // Called as the pull goes, from its threads, one call at a time (never concurrently).
  std::function<void(const PullEvent&)> progress;
  // When set and it becomes true, the pull stops and fails with "cancelled".
  const std::atomic<bool>* cancel = nullptr;
};

struct PulledImage {
  ImageRecord record;
  ImportStats stats;        // layers downloaded, reused; bytes downloaded
  bool up_to_date = false;  // the registry's manifest is the one the store has: nothing read
};


// The built-in image created on first use from the host's busybox-static.
inline constexpr std::string_view kBuiltinImage = "busybox";

// All methods are safe to call from several threads and several processes at once (file
// locks), and blocking: the runner calls them on its threadpool.
class Store {
 public:
  // Opens (creating if needed, mode 0700) the store under `root`, e.g. /var/lib/sandrun.
  // With `tidy` (the default), it also collects what crashed imports and unreferenced
  // layers left, when no other process is busy with the store. Starting containers passes
  // false: that scan is not worth its time on every `sandrun exec`.
  static Result<Store> open(const std::string& root, bool tidy = true);

  const std::string& root() const { return root_; }
  // The caps of imports and pulls (ImageLimits' defaults until set).
  void set_limits(const ImageLimits& limits) { limits_ = limits; }
  const ImageLimits& limits() const { return limits_; }

  // Imports a rootfs tarball (plain, gzip, zstd, xz: anything libarchive reads) as a
  // single-layer image named `ref`, replacing an existing record of that name.
  Result<ImageRecord> import_rootfs(std::string_view ref, const std::string& tarball);
  // Imports from a stream the caller already opened (used for the built-in image).
  Result<ImageRecord> import_rootfs_fd(std::string_view ref, int fd, std::string_view what);
  // Imports the images of an OCI image layout or a `docker save` archive, a directory or a tar
  // file (plain or compressed). With `name`, the one image it holds (or the one whose name or
  // tag matches) is imported under that name; without, every image under its own names.
  Result<std::vector<ImportedImage>> import_archive(const std::string& path, std::string_view name,
                                                    const ImportOptions& options);

  // The record of `ref`, or nullopt when there is none.
  Result<std::optional<ImageRecord>> find(std::string_view ref) const;
  // The record of `ref`; the built-in busybox image is created on first use; any other
  // missing image is an error that says how to import it.
  Result<ImageRecord> ensure(std::string_view ref);
  Result<std::vector<ImageRecord>> list() const;
  // The image's config blob (the OCI image config JSON: labels, history, platform...), checked
  // against its digest (the image id).
  Result<std::string> config_json(const ImageRecord& image) const;
  // Removes the record; layers and blobs no other image references are deleted unless leased.
  Result<RemoveReport> remove(std::string_view ref);
  // Names the image of `src` also `dst` (replacing what `dst` named before).
  Result<ImageRecord> tag(std::string_view src, std::string_view dst);
  // Removes what no image references (layers, blobs, crashed imports) and images known only by
  // digest; with options.all every image, with options.max_size the least recently used ones
  // until the cache is under that size. An image a running sandrun uses is never removed.
  Result<PruneReport> prune(const PruneOptions& options);
  // Bytes the cache holds: the file data of its layers and blobs.
  Result<uint64_t> size() const;
  // Checks every blob of `ref` (or of all images when empty) against its digest, and every
  // layer against a fresh extraction of its blob. A corrupted layer is removed, so that no
  // container starts from it (its images then say to import or pull them again).
  Result<VerifyReport> verify(std::string_view ref);
  // Pulls `ref` ("127.0.0.1:5000/team/x:1", or name@sha256:...) from its registry: the
  // manifest always, then only the layers the store lacks, each unpacked while it downloads and
  // verified; nothing is committed unless all are. Two pulls of one image, in this process or
  // another, download it once: the second waits for the first (a lock file per name).
  Result<PulledImage> pull(std::string_view ref, const PullOptions& options);
  // Writes `ref` as an OCI image layout tar (`docker load` and `podman load` read it).
  Result<void> save(std::string_view ref, const std::string& out, const SaveOptions& options);
  // Several images in one archive (as `docker save a b`): each image once, with the names
  // given for it (an index entry per name, its RepoTags in manifest.json); blobs shared by
  // images are written once.
  Result<void> save_images(const std::vector<std::string>& refs, const std::string& out, const SaveOptions& options);
  // save_images() into the store's tmp/ (locked while written, so no sweep takes it),
  // returning the finished archive open for reading and already unlinked: nothing is left on
  // any path, and the caller streams it from the descriptor (GET /images/{name}/get).
  Result<UniqueFd> save_to_temp(const std::vector<std::string>& refs, const SaveOptions& options);

  // Absolute path of an unpacked layer directory (an overlay lower dir).
  std::string layer_path(std::string_view diff_id) const;
  // Holds the image's layers for a run (see LayerLease) and records the image as used now, for
  // the least-recently-used eviction of prune().
  Result<LayerLease> lease(const ImageRecord& image) const;

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  std::string root_;
  ImageLimits limits_;
};

// The default state directory: /var/lib/sandrun for root, else $XDG_DATA_HOME/sandrun
// (~/.local/share/sandrun).
std::string default_root();
// default_root() for a given effective uid and environment values (either may be null).
std::string default_root_for(uid_t euid, const char* xdg_data_home, const char* home);

}  // namespace sandrun::cache
