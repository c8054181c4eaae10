// The io_uring backend (in progress): until it lands, Run() chooses epoll.
#include "runtime/netpoll/netpoll.h"

namespace greenline::internal {

std::unique_ptr<Netpoll> NewUringNetpoll(int* error) {
  *error = 0;  // not an errno: this build has no io_uring backend
  return nullptr;
}

}  // namespace greenline::internal
