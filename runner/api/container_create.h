// POST /containers/create: Docker's container config (Config + HostConfig) translated into a
// JobSpec for the registry, field by field; what sandrun cannot honour is a 400 naming the
// field, what it ignores is logged (docs/api.md lists both).
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "cache/store.h"
#include "runner/api/http_message.h"
#include "runner/engine/container_registry.h"

namespace sandrun::runner::api {

// What create's body asks for, before the image is known.
struct CreateBody {
  std::string image;       // as sent
  std::string json;        // the body, parsed again once the image is known
};
// The body's image, or a 400.
std::variant<CreateBody, Response> read_create_body(const std::string& body);

// The registry's request for `body` with `image`'s defaults (Entrypoint, Cmd, Env, WorkingDir,
// User), or a 400 naming the field. The record's `client` keeps Docker's view for inspect:
// {"Config", "HostConfig", "Path", "Args", "Image", "ImageID", "Mounts"}.
// `image_config`: the image's config blob (JSON text, may be empty), for its Healthcheck.
std::variant<CreateRequest, Response> translate_create(const CreateBody& body, const std::string& name,
                                                       const cache::ImageRecord& image,
                                                       std::string_view image_config = {});

}  // namespace sandrun::runner::api
