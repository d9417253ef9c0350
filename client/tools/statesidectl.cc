// statesidectl: command line access to the Stateside sidecar (see cli.h).
#include <iostream>

#include "client/tools/cli.h"

int main(int argc, char** argv) {
  return stateside::cli::RunStatesidectl(argc, argv, std::cout, std::cerr);
}
