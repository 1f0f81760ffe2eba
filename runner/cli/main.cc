// sandrun's entry point: everything lives in the runner library.
#include "runner/cli/commands.h"

int main(int argc, char** argv) { return sandrun::runner::cli_main(argc, argv); }
