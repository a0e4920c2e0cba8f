// Catch2 main for the exchange tests; the agent's log lines are kept to errors.
#define CATCH_CONFIG_RUNNER
#include "ew_catch.h"

#include "net/log.h"

int main(int argc, char* argv[]) {
    ew::log_set_level(ew::LogLevel::error);
    return Catch::Session().run(argc, argv);
}
