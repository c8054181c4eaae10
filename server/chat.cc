#include "server/chat.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <utility>

#include "greenline/goroutine.h"
#include "greenline/panic.h"
#include "greenline/timer_chan.h"
#include "protocol/chat.h"
#include "protocol/line.h"
#include "protocol/sanitize.h"
#include "protocol/telnet.h"
#include "server/linger.h"
#include "server/session.h"

namespace greenline::server {

namespace proto = greenline::protocol;

// ---- OutMessage, Outbox ----------------------------------------------------------------------

OutMessage* OutMessage::Make(std::string text, int32_t refs) {
  auto* m = new OutMessage;
  m->refs.store(refs, std::memory_order_relaxed);
  m->text = std::move(text);
  return m;
}

Outbox::Outbox(size_t limit) : limit_(limit) {}

Outbox::~Outbox() {
  for (OutMessage* m : queue_) m->Unref();
}

Outbox::Push Outbox::Put(OutMessage* m) {
  size_t cost = Cost(m);
  Push result = Push::kQueued;
  {
    MutexLock lock(mu_);
    if (closed_ || overflow_) {
      result = Push::kDropped;
    } else if (bytes_ + cost > limit_) {
      overflow_ = true;
      result = Push::kOverflow;
    } else {
      queue_.push_back(m);  // may throw bad_alloc: the guard unlocks
      bytes_ += cost;
    }
  }
  if (result != Push::kQueued) m->Unref();
  if (result != Push::kDropped) ready_.Notify();
  return result;
}

bool Outbox::Take(std::vector<OutMessage*>* batch) {
  for (;;) {
    {
      MutexLock lock(mu_);
      if (!queue_.empty() && !overflow_) {
        batch->swap(queue_);  // O(1) under the lock; the caller hands back an empty vector
        return true;
      }
      if (closed_ || overflow_) return false;
    }
    // A push between the look above and this wait left the permit set: no wake-up is lost.
    ready_.Wait();
  }
}

void Outbox::Written(size_t cost) {
  MutexLock lock(mu_);
  bytes_ -= std::min(cost, bytes_);
}

void Outbox::Close() {
  {
    MutexLock lock(mu_);
    closed_ = true;
  }
  ready_.Notify();
}

bool Outbox::overflowed() const {
  MutexLock lock(mu_);
  return overflow_;
}

// ---- ChatClient ------------------------------------------------------------------------------

// One connection's state. Its handler goroutine owns everything but `outbox` (any goroutine pushes)
// and `nick`/`room` (written by the handler under the hub's mutex, read by others under it).
class ChatClient {
 public:
  ChatClient(ChatService& service, net::Conn conn, ConnTicket ticket)
      : session(service, std::move(conn), std::move(ticket), [this] { OnStop(); }),
        outbox(service.config().out_queue),
        writer_done(MakeChan<bool>()) {}

  // Queues a line for this client alone.
  void Send(std::string text) { Deliver(OutMessage::Make(std::move(text), 1)); }
  // Queues a message (one of its references) and cuts this client off if its queue overflows.
  void Deliver(OutMessage* m) {
    if (outbox.Put(m) == Outbox::Push::kOverflow) session.CutOff(DisconnectReason::kTooSlow);
  }

  void WriterLoop();

  const net::Conn& conn() const { return session.conn(); }
  Metrics& metrics() const { return session.service().metrics(); }

  ConnSession session;  // first: its ticket goes last
  Outbox outbox;
  Chan<bool> writer_done;    // closed when the writer goroutine ends
  std::string nick;          // under the hub's mutex
  ChatRoom* room = nullptr;  // under the hub's mutex

 private:
  // A shutdown stops this connection: everyone is told, after what is already queued.
  void OnStop() {
    // Already cut off (too slow, a failed write): it keeps its past deadline and gets no notice.
    if (session.cut()) {
      conn().SetWriteDeadline(Clock::now());
      return;
    }
    Send(std::string(proto::kShutdownLine));
  }
};

void ChatClient::WriterLoop() {
  Frame([&](Defer& defer) {
    defer([&] {
      if (PanicValue v = Recover()) {
        session.LogPanic(v);
        session.CutOff(DisconnectReason::kPanic);
      }
      writer_done.Close();
    });
    std::vector<OutMessage*> batch;
    std::string buf;
    Metrics& m = metrics();
    bool mid_line = false;  // a failed write may have sent part of a line
    // Writes buf (at most about kChunk bytes: a lagging reader's 1 MiB backlog is not copied in
    // one piece) and releases its share of the queue. False when the connection is done.
    auto flush = [&](size_t cost) {
      auto r = conn().Write(buf);
      outbox.Written(cost);
      if (r.n > 0) {
        m.bytes_sent_total[ServiceId::kChat].Add(r.n);
        // Lines, not messages: /help is one message of many lines.
        m.lines_sent_total[ServiceId::kChat].Add(
            static_cast<uint64_t>(std::count(buf.begin(), buf.begin() + r.n, '\n')));
      }
      mid_line = r.n > 0 && buf[r.n - 1] != '\n';
      buf.clear();
      if (r.err && !outbox.overflowed()) session.CutOff(DisconnectReason::kError);
      return !r.err;
    };
    constexpr size_t kChunk = 64 * 1024;
    bool ok = true;
    while (ok && outbox.Take(&batch)) {
      size_t cost = 0;
      for (OutMessage* msg : batch) {
        if (ok) {
          buf += msg->text;
          cost += Outbox::Cost(msg);
          if (buf.size() >= kChunk) {
            ok = flush(cost);
            cost = 0;
          }
        }
        msg->Unref();
      }
      if (ok && !buf.empty()) ok = flush(cost);
      batch.clear();
      // What a burst grew is not kept for the rest of the connection.
      if (batch.capacity() > 1024) std::vector<OutMessage*>().swap(batch);
      if (buf.capacity() > 2 * kChunk) std::string().swap(buf);
    }
    if (outbox.overflowed()) {
      // Best effort: the socket is most likely full, which is why we are here.
      conn().SetWriteDeadline(Clock::now() + std::chrono::milliseconds(100));
      conn().Write(proto::TooSlowLine(mid_line));
    }
  });
}

// ---- ChatHub ---------------------------------------------------------------------------------

namespace {

// Arrivals and departures are announced in rooms up to this size. Beyond it they would be most of
// a room's traffic (every member told of every other's coming and going: quadratic in the room's
// size while it fills or empties), so they are not; /who still tells who is there.
constexpr size_t kAnnounceMax = 1000;
// /who lists at most this many nicks, then says how many more: its answer must fit the asker's
// output queue, and a huge room's full list would not.
constexpr size_t kWhoMax = 200;

}  // namespace

ChatHub::ChatHub(Metrics& metrics) : metrics_(metrics) { RoomLocked(proto::kLobby); }

ChatHub::~ChatHub() = default;

std::string ChatHub::Key(std::string_view name) { return proto::NameKey(name); }

ChatRoom* ChatHub::RoomLocked(std::string_view name) {
  // Rooms, like nicks, ignore case: "#Go" is "#go", named as whoever made it first typed it.
  std::string key = Key(name);
  auto it = rooms_.find(key);
  if (it == rooms_.end()) {
    it = rooms_.emplace(key, std::make_unique<ChatRoom>(std::string(name))).first;
    metrics_.chat_rooms.Set(static_cast<int64_t>(rooms_.size()));
  }
  return it->second.get();
}

void ChatHub::BroadcastLocked(ChatRoom* room, std::string text, const ChatClient* except) {
  size_t n = room->members.size() - (except != nullptr ? 1 : 0);
  if (n == 0) return;
  OutMessage* msg = OutMessage::Make(std::move(text), static_cast<int32_t>(n));
  for (ChatClient* c : room->members) {
    if (c != except) c->Deliver(msg);
  }
}

void ChatHub::MoveLocked(ChatClient* c, ChatRoom* to, std::string_view reason, bool quiet) {
  if (ChatRoom* from = c->room) {
    bool empty;
    {
      MutexLock lock(from->mu);
      auto& v = from->members;
      v.erase(std::find(v.begin(), v.end(), c));
      if (!quiet && !v.empty() && v.size() < kAnnounceMax) {
        BroadcastLocked(from, proto::LeftLine(c->nick, from->name, reason), nullptr);
      }
      empty = v.empty();
    }
    c->room = nullptr;
    if (empty && from->name != proto::kLobby) {
      rooms_.erase(rooms_.find(Key(from->name)));
      metrics_.chat_rooms.Set(static_cast<int64_t>(rooms_.size()));
    }
  }
  if (to != nullptr) {
    MutexLock lock(to->mu);
    to->members.push_back(c);
    c->room = to;
    // The joiner sees it too: confirmation that it worked.
    if (to->members.size() <= kAnnounceMax) {
      BroadcastLocked(to, proto::JoinedLine(c->nick, to->name), nullptr);
    } else {
      c->Send(proto::JoinedLine(c->nick, to->name));
    }
  }
}

void ChatHub::Enter(ChatClient* c) {
  MutexLock lock(mu_);
  for (;;) {
    std::string nick = proto::GuestNick(next_guest_++);
    if (nicks_.emplace(Key(nick), c).second) {
      c->nick = std::move(nick);
      break;
    }
  }
  c->Send(proto::WelcomeLine(c->nick, proto::kLobby));
  MoveLocked(c, RoomLocked(proto::kLobby), {}, false);
}

void ChatHub::Exit(ChatClient* c, std::string_view reason, bool quiet) {
  MutexLock lock(mu_);
  if (!c->nick.empty()) nicks_.erase(Key(c->nick));
  MoveLocked(c, nullptr, reason, quiet);
}

void ChatHub::Say(ChatClient* c, std::string_view text) {
  // c->room changes only on c's own goroutine (this one): no hub lock needed to read it, and the
  // room cannot go away while c is in it.
  ChatRoom* room = c->room;
  MutexLock lock(room->mu);
  BroadcastLocked(room, proto::SayLine(room->name, c->nick, text), c);
}

void ChatHub::Me(ChatClient* c, std::string_view text) {
  ChatRoom* room = c->room;
  MutexLock lock(room->mu);
  BroadcastLocked(room, proto::ActionLine(room->name, c->nick, text), c);
}

void ChatHub::Nick(ChatClient* c, std::string_view nick) {
  MutexLock lock(mu_);
  std::string key = Key(nick);
  auto it = nicks_.find(key);
  if (it != nicks_.end() && it->second != c) {
    c->Send(proto::NickTakenLine(nick));
    return;
  }
  if (nick == c->nick) return;
  nicks_.erase(Key(c->nick));
  nicks_.emplace(key, c);
  std::string old = std::exchange(c->nick, std::string(nick));
  ChatRoom* room = c->room;
  MutexLock room_lock(room->mu);
  if (room->members.size() <= kAnnounceMax) {
    BroadcastLocked(room, proto::NickLine(old, c->nick), nullptr);
  } else {
    c->Send(proto::NickLine(old, c->nick));
  }
}

void ChatHub::Join(ChatClient* c, std::string_view room) {
  MutexLock lock(mu_);
  if (Key(c->room->name) == Key(room)) {
    c->Send(proto::AlreadyInLine(c->room->name));
    return;
  }
  MoveLocked(c, RoomLocked(room), {}, false);
}

void ChatHub::PrivateMessage(ChatClient* c, std::string_view to, std::string_view text) {
  MutexLock lock(mu_);
  auto it = nicks_.find(Key(to));
  if (it == nicks_.end()) {
    c->Send(proto::NoSuchUserLine(to));
    return;
  }
  // Delivered under the hub's mutex: the target cannot leave (and be destroyed) meanwhile.
  it->second->Send(proto::PrivateLine(c->nick, text));
}

void ChatHub::Who(ChatClient* c) {
  std::string line;
  {
    MutexLock lock(mu_);
    ChatRoom* room = c->room;
    MutexLock room_lock(room->mu);
    std::vector<std::string_view> names;
    names.reserve(room->members.size());
    for (ChatClient* m : room->members) names.push_back(m->nick);
    size_t shown = std::min(names.size(), kWhoMax);
    std::partial_sort(names.begin(), names.begin() + shown, names.end());
    // Formatted under the locks: the views point at nicks that may change once they are released.
    line = proto::WhoLine(room->name, std::span(names.data(), shown), names.size());
  }
  c->Send(std::move(line));
}

void ChatHub::Rooms(ChatClient* c) {
  std::string line;
  {
    MutexLock lock(mu_);
    std::vector<proto::RoomCount> list;
    for (auto& [key, room] : rooms_) {
      if (list.size() == kWhoMax) break;
      MutexLock room_lock(room->mu);
      list.push_back({room->name, room->members.size()});
    }
    line = proto::RoomsLine(list, rooms_.size());  // the names live in rooms_: formatted under mu_
  }
  c->Send(std::move(line));
}

// ---- the handler -----------------------------------------------------------------------------

namespace {

// Flood control: `rate` lines per second, bursts up to `burst`.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  bool Take() {
    if (rate_ <= 0) return true;
    auto now = Clock::now();
    double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + dt * rate_);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double rate_, burst_, tokens_;
  Clock::time_point last_ = Clock::now();
};

struct LineResult {
  bool quit = false;
  std::string quit_reason;
};

class ChatHandler {
 public:
  ChatHandler(ChatHub& hub, ChatClient& client, const Config& cfg)
      : hub_(hub), c_(client), cfg_(cfg), bucket_(cfg_.chat_rate, cfg_.chat_burst) {}

  // Reads and acts until the connection should end; says why.
  DisconnectReason Run(std::string* quit_reason) {
    proto::TelnetFilter telnet;
    proto::LineFramer framer(cfg_.max_line);
    IdleTimer idle(cfg_.idle_timeout, c_.conn(), /*both=*/false);
    ConnCounters counters(c_.metrics(), ServiceId::kChat);
    std::string reply;
    for (;;) {
      idle.Touch();
      if (c_.session.stopping()) return DisconnectReason::kShutdown;
      if (auto why = c_.session.cut()) return *why;
      // Straight into the framer's buffer (no buffer on this goroutine's stack: an idle
      // connection's stack stays one page), telnet commands filtered out in place.
      std::span<char> space = framer.Space();
      auto [n, err] = c_.conn().Read(space.data(), space.size());
      if (n > 0) {
        counters.Received(n);
        reply.clear();
        framer.Commit(telnet.FeedInPlace(space.first(n), &reply));
        if (!reply.empty()) c_.Send(reply);
        proto::LineFramer::Line line;
        proto::LineFramer::Status st;
        uint64_t lines = 0;
        while ((st = framer.Next(&line)) == proto::LineFramer::Status::kLine) {
          ++lines;
          if (OnLine(line.content, quit_reason)) {
            counters.LinesReceived(lines);
            return DisconnectReason::kQuit;
          }
          // A read full of short lines into a big room is thousands of deliveries: let this
          // worker's other goroutines (and its poller) run between lines now and then. Counted
          // across reads: a sender that keeps the socket full never parks in Read.
          if (++since_yield_ == 32) {
            since_yield_ = 0;
            Yield();
          }
        }
        counters.LinesReceived(lines);
        if (st == proto::LineFramer::Status::kTooLong) {
          c_.Send(proto::LineTooLongLine(cfg_.max_line));
          return DisconnectReason::kLineTooLong;
        }
      }
      if (err) {
        // `printf '/quit' | nc`: a last line without its LF still counts.
        if (err.eof() && framer.Buffered() > 0) {
          counters.LinesReceived(1);
          if (OnLine(framer.Rest(), quit_reason)) return DisconnectReason::kQuit;
        }
        return c_.session.ReasonFor(err);
      }
    }
  }

 private:
  // True when the client quit.
  bool OnLine(std::string_view raw, std::string* quit_reason) {
    std::string text = proto::SanitizeText(raw);
    proto::Command cmd = proto::ParseChatLine(text, cfg_.debug_commands);
    if (cmd.kind == proto::Command::Kind::kNone) return false;  // an empty line
    // /quit always gets through: a flooder must be able to leave.
    if (cmd.kind != proto::Command::Kind::kQuit && !bucket_.Take()) {
      c_.metrics().rate_limited_total[ServiceId::kChat].Inc();
      // One notice per second at most: a flood must not turn into a flood of notices.
      auto now = Clock::now();
      if (now - last_limited_notice_ >= std::chrono::seconds(1)) {
        last_limited_notice_ = now;
        c_.Send(std::string(proto::kRateLimitedLine));
      }
      return false;
    }
    using K = proto::Command::Kind;
    switch (cmd.kind) {
      case K::kSay:
        hub_.Say(&c_, cmd.text);
        break;
      case K::kMe:
        hub_.Me(&c_, cmd.text);
        break;
      case K::kNick:
        hub_.Nick(&c_, cmd.name);
        break;
      case K::kJoin:
        hub_.Join(&c_, cmd.room);
        break;
      case K::kPart:
        hub_.Join(&c_, proto::kLobby);
        break;
      case K::kMsg:
        hub_.PrivateMessage(&c_, cmd.name, cmd.text);
        break;
      case K::kWho:
        hub_.Who(&c_);
        break;
      case K::kRooms:
        hub_.Rooms(&c_);
        break;
      case K::kHelp:
        c_.Send(proto::HelpText(cfg_.debug_commands));
        break;
      case K::kQuit:
        *quit_reason = std::string(cmd.text);
        c_.Send(std::string(proto::kByeLine));
        return true;
      case K::kDebugPanic:
        Panic("/debug panic from " + c_.session.peer());
      case K::kDebugBlock:
        c_.Send(proto::DebugBlockLine(cmd.seconds));
        After(std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::duration<double>(cmd.seconds)))
            .Recv();
        break;
      case K::kInvalid:
        c_.Send(proto::ErrorLine(cmd.error));
        break;
      case K::kNone:
        break;
    }
    return false;
  }

  ChatHub& hub_;
  ChatClient& c_;
  const Config& cfg_;
  TokenBucket bucket_;
  Clock::time_point last_limited_notice_{};
  int since_yield_ = 0;  // lines handled since this goroutine last yielded
};

}  // namespace

ChatService::ChatService(const Config& config, Metrics& metrics, ConnLimit* limit)
    : Service(ServiceId::kChat, metrics, limit, proto::kServerFullLine),
      config_(config),
      hub_(metrics) {}

void ChatService::Serve(net::Conn conn, ConnTicket ticket) {
  Go([this, conn, t = std::move(ticket)]() mutable { ServeConn(conn, std::move(t)); });
}

void ChatService::ServeConn(net::Conn conn, ConnTicket ticket) {
  ChatClient client(*this, conn, std::move(ticket));
  ConnSession& session = client.session;
  DisconnectReason reason = DisconnectReason::kError;
  std::string quit_reason;
  bool entered = false, writer = false;
  Frame([&](Defer& defer) {
    defer([&] {
      if (PanicValue v = Recover()) {
        reason = DisconnectReason::kPanic;
        session.LogPanic(v);
        client.Send(std::string(proto::kInternalErrorLine));
      }
      if (entered) {
        std::string why = reason == DisconnectReason::kQuit ? quit_reason : std::string();
        hub_.Exit(&client, why, reason == DisconnectReason::kShutdown);
      }
      // What is queued goes out (the goodbye, "! internal error", and at shutdown everything
      // accepted before it and the notice) for up to two seconds, or at shutdown until the flush
      // deadline; then the socket closes, which also ends a writer stuck on a full socket.
      client.outbox.Close();
      if (writer) {
        auto wait = Clock::duration(std::chrono::seconds(2));
        if (session.stopping()) {
          wait = std::max(session.flush_by() - Clock::now(), Clock::duration::zero());
        }
        Select(RecvCase(client.writer_done), RecvCase(After(wait)));
      }
      if (reason == DisconnectReason::kError || reason == DisconnectReason::kTooSlow) {
        conn.Close();  // nobody to tell, or nobody listening
      } else {
        LingeringClose(conn, &metrics(), ServiceId::kChat);
      }
      if (writer) client.writer_done.RecvOk();
      session.Finish(reason);
    });
    session.Start();
    if (session.stopping()) {  // shutdown has begun: not served
      reason = DisconnectReason::kShutdown;
      return;
    }
    writer = true;
    Go([&client] { client.WriterLoop(); });
    if (session.stopping()) {  // shutdown began since Start(): no welcome, no join notice
      reason = DisconnectReason::kShutdown;
      return;
    }
    hub_.Enter(&client);
    entered = true;
    reason = ChatHandler(hub_, client, config_).Run(&quit_reason);
  });
}

}  // namespace greenline::server
