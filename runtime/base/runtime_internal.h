// Included by every runtime header that is not part of the public API. Programs (the server, the
// load tools, a user's program) include the public headers, <greenline/...> in
// runtime/include/greenline/, which is all that greenline::runtime exposes; the runtime's own
// sources, and the tests that look inside it (greenline::runtime_internals), define
// GREENLINE_RUNTIME_INTERNALS. So a program that reaches for an internal header does not build.
#pragma once

#ifndef GREENLINE_RUNTIME_INTERNALS
#error "internal to the greenline runtime: include the public <greenline/...> headers instead"
#endif
