// toml++'s implementation, compiled once into sandrun (TOML_IMPLEMENTATION) instead of loading
// Debian's libtomlplusplus.so at every start.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
