// Inside the Linux port: pal::poll's kernel registrations (epoll) must hear of every socket
// closed, so that a new socket that gets the same number is registered afresh.
#pragma once
#include "pal.h"

namespace pal {
// Drops what pal::poll keeps for `s`, before `s` is closed: by us (closing = true: the close
// ends the kernel's registration, no call needed) or by c-ares (false: unregistered now).
void poll_forget(Socket s, bool closing);
}  // namespace pal
