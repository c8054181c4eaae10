#include "server/chat.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
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

// ---- ChatClient ------------------------------------------------------------------------------

// What a connection's reader (ChatConn, below), its writer and the hub share. The reader owns it
// and destroys it only once the writer has ended. Its `outbox` takes pushes from any goroutine;
// `nick`/`room` are written by the reader under the hub's mutex and read by others under it; the
// writer's buffers are the writer's alone.
class ChatClient {
 public:
  ChatClient(ChatService& service, net::Conn conn, ConnTicket ticket)
      : session(
            service, std::move(conn), std::move(ticket), [this] { OnStop(); }, &pause.notifier),
        outbox(Limits(service.config()), &service.budget(),
               [this](OutClock::time_point at) { SetSoftDeadline(at); }) {}

  static OutLimits Limits(const Config& c) {
    return OutLimits{c.out_queue, c.out_queue_hard,
                     std::chrono::duration_cast<OutClock::duration>(c.out_queue_grace),
                     c.out_min_rate};
  }

  // Queues a line for this client alone.
  void Send(std::string text) { Deliver(OutMessage::Make(std::move(text), 1)); }
  // Queues a message (one of its references) and cuts this client off if its queue overflows.
  void Deliver(OutMessage* m) {
    if (outbox.Put(m) == Outbox::Push::kOverflow) session.CutOff(DisconnectReason::kTooSlow);
  }

  // Starts the writer: a hibernating goroutine that drains the outbox to the socket and holds a
  // stack only while there is something to write. `writer_done` is closed when it ends.
  void StartWriter();
  bool writer_started() const { return writer_done_.has_value(); }
  const Chan<bool>& writer_done() const { return *writer_done_; }

  const net::Conn& conn() const { return session.conn(); }
  Metrics& metrics() const { return session.service().metrics(); }

  ConnSession session;  // first: its ticket goes last
  Outbox outbox;
  // The reader's, while the output budget is exhausted: it waits here to read its next line.
  // Stop and CutOff notify it too.
  BudgetWaiter pause;
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

  // One step of the writer: writes what is queued until nothing is (true: wait for more) or the
  // writer is done (false: closed and drained, overflowed, a failed write, a panic).
  bool WriterStep();
  bool WriteQueued();
  // Writes `data` and releases `cost` of the queue; false when the connection is done.
  bool Flush(std::string_view data, size_t cost);
  // The outbox's soft limit grace ends `at` (the zero time: it is under the soft limit): that is
  // the write deadline, unless a shutdown's or a cut-off's stands.
  void SetSoftDeadline(OutClock::time_point at);

  std::optional<Chan<bool>> writer_done_;
  std::vector<OutMessage*> batch_;  // the writer's: what it took from the outbox
  std::string buf_;                 // the writer's: the bytes of one write
  bool mid_line_ = false;           // the writer's: a failed write may have sent part of a line
};

void ChatClient::StartWriter() {
  writer_done_ = MakeChan<bool>();
  GoHibernating([this, done = *writer_done_]() -> Resume {
    if (WriterStep()) return outbox.ResumeWhenReady();
    done.Close();  // the reader may destroy this client from here on: touch nothing of it
    return Resume::Done();
  });
}

bool ChatClient::WriterStep() {
  bool more = false;
  Frame([&](Defer& defer) {
    defer([&] {
      if (PanicValue v = Recover()) {
        session.LogPanic(v);
        session.CutOff(DisconnectReason::kPanic);
        more = false;
      }
    });
    more = WriteQueued();
  });
  return more;
}

bool ChatClient::WriteQueued() {
  // At most about kChunk bytes per write: a lagging reader's 1 MiB backlog is not copied in one
  // piece.
  constexpr size_t kChunk = 64 * 1024;
  for (;;) {
    switch (outbox.TryTake(&batch_)) {
      case Outbox::Taken::kEmpty:
        // Nothing to write: what this burst grew goes, so an idle connection keeps no buffer.
        std::vector<OutMessage*>().swap(batch_);
        std::string().swap(buf_);
        return true;
      case Outbox::Taken::kDone:
        if (outbox.overflowed()) {
          // Best effort: the socket is most likely full, which is why we are here.
          conn().SetWriteDeadline(Clock::now() + std::chrono::milliseconds(100));
          conn().Write(proto::TooSlowLine(mid_line_));
        }
        return false;
      case Outbox::Taken::kBatch:
        break;
    }
    bool ok = true;
    if (batch_.size() == 1) {
      // One message (the usual case below a room's top rate): written from where it is.
      ok = Flush(batch_[0]->text, Outbox::Cost(batch_[0]));
      batch_[0]->Unref();
    } else {
      size_t cost = 0, skipped = 0;
      for (OutMessage* msg : batch_) {
        if (ok) {
          buf_ += msg->text;
          cost += Outbox::Cost(msg);
          if (buf_.size() >= kChunk) {
            ok = Flush(buf_, cost);
            buf_.clear();
            cost = 0;
          }
        } else {
          skipped += Outbox::Cost(msg);  // never to be written: it stops counting now
        }
        msg->Unref();
      }
      if (ok && !buf_.empty()) ok = Flush(buf_, cost);
      buf_.clear();
      if (skipped > 0) outbox.Written(skipped);
    }
    batch_.clear();
    if (!ok) {
      // The writer ends here; a reader cut off as too slow still hears it (TryTake: kDone).
      if (outbox.overflowed()) continue;
      return false;
    }
    if (buf_.capacity() > 2 * kChunk) std::string().swap(buf_);
  }
}

bool ChatClient::Flush(std::string_view data, size_t cost) {
  Metrics& m = metrics();
  bool ok = true;
  for (;;) {
    auto r = conn().Write(data);
    if (r.n > 0) {
      outbox.Drained(r.n);
      m.bytes_sent_total[ServiceId::kChat].Add(r.n);
      // Lines, not messages: /help is one message of many lines.
      m.lines_sent_total[ServiceId::kChat].Add(
          static_cast<uint64_t>(std::count(data.begin(), data.begin() + r.n, '\n')));
      mid_line_ = data[r.n - 1] != '\n';
      data.remove_prefix(r.n);
    }
    if (!r.err) break;
    if (r.err.timeout() && !session.stopping() && !session.cut()) {
      // The soft limit's grace is over: write on if the reader is back under it or drained at
      // the minimum rate (a new grace has begun); else it is too slow.
      if (!outbox.SoftLimitExpired(Clock::now())) continue;
      session.CutOff(DisconnectReason::kTooSlow);
    }
    ok = false;
    break;
  }
  outbox.Written(cost);
  if (!ok && !outbox.overflowed()) session.CutOff(DisconnectReason::kError);
  return ok;
}

void ChatClient::SetSoftDeadline(OutClock::time_point at) {
  if (session.stopping() || session.cut()) return;
  conn().SetWriteDeadline(at);
  // A Stop or a CutOff since the look above may have set its deadline before ours did: theirs
  // wins (each sets its flag before its deadline, so one of the two sees the other).
  if (session.stopping()) {
    conn().SetWriteDeadline(session.flush_by());
  } else if (session.cut()) {
    conn().SetWriteDeadline(Clock::now());
  }
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

size_t ChatHub::BiggestRooms(size_t max, std::vector<std::pair<std::string, size_t>>* out) {
  out->clear();
  MutexLock lock(mu_);  // rooms are not removed meanwhile; only the top ones' names are copied
  std::vector<std::pair<size_t, const ChatRoom*>> all;
  all.reserve(rooms_.size());
  for (auto& [key, room] : rooms_) {
    MutexLock room_lock(room->mu);
    all.emplace_back(room->members.size(), room.get());
  }
  auto bigger = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second->name < b.second->name;
  };
  size_t n = std::min(max, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(n), all.end(), bigger);
  for (size_t i = 0; i < n; ++i) out->emplace_back(all[i].second->name, all[i].first);
  return rooms_.size();
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

// One chat connection: its reader's state between the steps of its hibernating goroutine
// (ServeHibernating), and the ChatClient its writer and the hub share. The reader reads, parses and
// acts; between reads it holds no stack, and its framer holds no buffer unless a partial line is
// pending.
class ChatConn {
 public:
  ChatConn(ChatService& service, ChatHub& hub, net::Conn conn, ConnTicket ticket)
      : client_(service, conn, std::move(ticket)),
        hub_(hub),
        budget_(service.budget()),
        cfg_(service.config()),
        counters_(service.metrics(), ServiceId::kChat),
        framer_(cfg_.max_line),
        idle_(cfg_.idle_timeout, std::move(conn), /*both=*/false),
        bucket_(cfg_.chat_rate, cfg_.chat_burst) {}

  ConnSession& session() { return client_.session; }

  // Counts the connection, starts its writer, says welcome and joins the lobby, unless shutdown
  // has begun (then the first step ends it with kShutdown, unserved).
  void Start() {
    ConnSession& session = client_.session;
    session.Start();
    idle_.Touch();
    if (session.stopping()) return;
    client_.StartWriter();
    if (session.stopping()) return;  // shutdown began since Start(): no welcome, no join notice
    hub_.Enter(&client_);
    entered_ = true;
  }

  // Reads and acts until the client has nothing more to say (then hibernates until it does) or
  // the connection should end. The idle deadline moves when a read brought something (and at the
  // start), not when a step begins: a step woken by the deadline itself must see it passed.
  NextStep Step() {
    for (;;) {
      // A line held back means the last step waited for the output budget: the client was not
      // idle, but its read deadline kept running meanwhile.
      if (held_) idle_.Touch();
      // After the idle deadline moved (a Stop racing with that move is seen here).
      if (client_.session.stopping()) return DisconnectReason::kShutdown;
      if (auto why = client_.session.cut()) return *why;
      // What was read and not handled yet comes first: a pause for the output budget left it.
      if (std::optional<NextStep> next = HandleLines()) return *next;
      if (read_err_) {
        net::Error err = *read_err_;
        // `printf '/quit' | nc`: a last line without its LF still counts.
        if (err.eof() && framer_.Buffered() > 0) {
          counters_.LinesReceived(1);
          if (OnLine(framer_.Rest())) return DisconnectReason::kQuit;
        }
        return client_.session.ReasonFor(err);
      }
      // Straight into the framer's buffer, telnet commands filtered out in place.
      std::span<char> space = framer_.Space();
      auto [n, err] = conn().TryRead(space.data(), space.size());
      if (err.would_block()) {
        framer_.Trim();  // no buffer while idle, unless a partial line is pending
        return conn().ResumeWhenReadable();
      }
      if (n > 0) {
        idle_.Touch();
        counters_.Received(n);
        reply_.clear();
        framer_.Commit(telnet_.FeedInPlace(space.first(n), &reply_));
        if (!reply_.empty()) client_.Send(reply_);
      }
      if (err) read_err_ = err;  // once the lines before it are handled
    }
  }

  // The room hears that the client left (unless everyone is leaving: a shutdown); what is queued
  // goes out (the goodbye, "! internal error", and at shutdown everything accepted before it and
  // the notice) for up to two seconds, or at shutdown until the flush deadline; then the socket
  // closes, which also ends a writer stuck on a full socket.
  void End(DisconnectReason reason) {
    ConnSession& session = client_.session;
    budget_.CancelWait(&client_.pause);
    if (reason == DisconnectReason::kPanic) client_.Send(std::string(proto::kInternalErrorLine));
    if (entered_) {
      std::string why = reason == DisconnectReason::kQuit ? quit_reason_ : std::string();
      hub_.Exit(&client_, why, reason == DisconnectReason::kShutdown);
    }
    client_.outbox.Close();
    if (client_.writer_started()) {
      auto wait = Clock::duration(std::chrono::seconds(2));
      if (session.stopping()) {
        wait = std::max(session.flush_by() - Clock::now(), Clock::duration::zero());
      }
      Select(RecvCase(client_.writer_done()), RecvCase(After(wait)));
    }
    if (reason == DisconnectReason::kError || reason == DisconnectReason::kTooSlow) {
      conn().Close();  // nobody to tell, or nobody listening
    } else {
      LingeringClose(conn(), &client_.metrics(), ServiceId::kChat);
    }
    if (client_.writer_started()) client_.writer_done().RecvOk();
    session.Finish(reason);
  }

 private:
  const net::Conn& conn() const { return client_.conn(); }

  // Handles the complete lines read so far. Returns how the step ends, if it does: the client quit
  // or sent a line too long, or the output budget is exhausted (then the next line waits, and TCP
  // pushes back on this sender, until the budget reopens: the step hibernates on client_.pause).
  std::optional<NextStep> HandleLines() {
    uint64_t lines = 0;
    std::optional<NextStep> end;
    for (;;) {
      proto::LineFramer::Line line;
      if (held_) {
        line = *held_;
        held_.reset();
      } else {
        proto::LineFramer::Status st = framer_.Next(&line);
        if (st == proto::LineFramer::Status::kTooLong) {
          client_.Send(proto::LineTooLongLine(cfg_.max_line));
          end = DisconnectReason::kLineTooLong;
          break;
        }
        if (st != proto::LineFramer::Status::kLine) break;
      }
      if (budget_.exhausted() && !IsQuit(line.content) && budget_.WaitOpen(&client_.pause)) {
        held_ = line;  // its bytes stay in the framer: nothing calls Space() before it is handled
        end = client_.pause.notifier.ResumeWhenNotified();
        break;
      }
      ++lines;
      if (OnLine(line.content)) {
        end = DisconnectReason::kQuit;
        break;
      }
      // A read full of short lines into a big room is thousands of deliveries: let this worker's
      // other goroutines (and its poller) run between lines now and then. Counted across reads: a
      // sender that keeps the socket full never waits for it.
      if (++since_yield_ == 32) {
        since_yield_ = 0;
        Yield();
      }
    }
    counters_.LinesReceived(lines);
    return end;
  }

  // /quit always gets through, also while the output budget is exhausted: a flooder must be able
  // to leave. (Parsed twice then, which only happens while the budget is exhausted.)
  bool IsQuit(std::string_view raw) const {
    return proto::ParseChatLine(proto::SanitizeText(raw), cfg_.debug_commands).kind ==
           proto::Command::Kind::kQuit;
  }

  // True when the client quit.
  bool OnLine(std::string_view raw) {
    std::string text = proto::SanitizeText(raw);
    proto::Command cmd = proto::ParseChatLine(text, cfg_.debug_commands);
    if (cmd.kind == proto::Command::Kind::kNone) return false;  // an empty line
    // /quit always gets through: a flooder must be able to leave.
    if (cmd.kind != proto::Command::Kind::kQuit && !bucket_.Take()) {
      client_.metrics().rate_limited_total[ServiceId::kChat].Inc();
      // One notice per second at most: a flood must not turn into a flood of notices.
      auto now = Clock::now();
      if (now - last_limited_notice_ >= std::chrono::seconds(1)) {
        last_limited_notice_ = now;
        client_.Send(std::string(proto::kRateLimitedLine));
      }
      return false;
    }
    using K = proto::Command::Kind;
    switch (cmd.kind) {
      case K::kSay:
        hub_.Say(&client_, cmd.text);
        break;
      case K::kMe:
        hub_.Me(&client_, cmd.text);
        break;
      case K::kNick:
        hub_.Nick(&client_, cmd.name);
        break;
      case K::kJoin:
        hub_.Join(&client_, cmd.room);
        break;
      case K::kPart:
        hub_.Join(&client_, proto::kLobby);
        break;
      case K::kMsg:
        hub_.PrivateMessage(&client_, cmd.name, cmd.text);
        break;
      case K::kWho:
        hub_.Who(&client_);
        break;
      case K::kRooms:
        hub_.Rooms(&client_);
        break;
      case K::kHelp:
        client_.Send(proto::HelpText(cfg_.debug_commands));
        break;
      case K::kQuit:
        quit_reason_ = std::string(cmd.text);
        client_.Send(std::string(proto::kByeLine));
        return true;
      case K::kDebugPanic:
        Panic("/debug panic from " + client_.session.peer());
      case K::kDebugBlock:
        client_.Send(proto::DebugBlockLine(cmd.seconds));
        After(std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::duration<double>(cmd.seconds)))
            .Recv();
        break;
      case K::kInvalid:
        client_.Send(proto::ErrorLine(cmd.error));
        break;
      case K::kNone:
        break;
    }
    return false;
  }

  ChatClient client_;
  ChatHub& hub_;
  OutputBudget& budget_;
  const Config& cfg_;
  ConnCounters counters_;
  proto::TelnetFilter telnet_;
  proto::LineFramer framer_;
  IdleTimer idle_;
  TokenBucket bucket_;
  std::string reply_;                            // telnet's answers to the last read
  std::optional<proto::LineFramer::Line> held_;  // the line a pause for the budget stopped before
  std::optional<net::Error> read_err_;           // the read's error, after the lines before it
  std::string quit_reason_;
  Clock::time_point last_limited_notice_{};
  int since_yield_ = 0;   // lines handled since this goroutine last yielded
  bool entered_ = false;  // Enter()ed the hub: Exit() it at the end
};

}  // namespace

ChatService::ChatService(const Config& config, Metrics& metrics, ConnLimit* limit)
    : Service(ServiceId::kChat, metrics, limit, proto::kServerFullLine),
      config_(config),
      budget_(config.out_memory > 0 ? config.out_memory : DefaultOutMemory(), &metrics),
      hub_(metrics) {}

void ChatService::Serve(net::Conn conn, ConnTicket ticket) {
  ServeHibernating(std::make_unique<ChatConn>(*this, hub_, std::move(conn), std::move(ticket)));
}

}  // namespace greenline::server
