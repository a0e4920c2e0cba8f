#define CATCH_CONFIG_MAIN
#include "ew_catch.h"
