// Command go-chat is the Go peer of greenline's chat service: a chat server of the classic Go
// shape, speaking the subset of greenline's protocol that loadtest's chat mode uses, with
// byte-identical lines. loadtest/bench runs it beside greenline.
//
//	go-chat [--port N] [--out-queue MESSAGES] [--max-line BYTES]
//
// It prints "go-chat: listening on port N (...)" once listening and exits 0 on SIGINT or SIGTERM
// (package peer).
//
// # Protocol (a subset of greenline's; protocol/chat.h has the full one)
//
// Lines end with LF; a CR before it is dropped. Every line the server sends ends with CRLF. On
// connect a user is guest-N in #lobby: "* welcome to greenline chat: you are guest-N in #lobby
// (/help lists the commands)", then "* guest-N joined #lobby". A plain line goes to everyone else
// in the room as "[#room] nick: text" ("//text" sends "/text"). Commands, case-insensitive:
//
//	/nick NAME   [A-Za-z0-9_-]{1,24}, unique ignoring case: the room, the user included, sees
//	             "* old is now known as NAME"; "! nick taken: NAME" if someone has it
//	/join ROOM   same charset, '#' optional, rooms ignore case: the old room sees
//	             "* nick left #old", the new one, the joiner included, "* nick joined #room"
//	/part        back to #lobby ("! already in #lobby" there)
//	/quit [why]  "* bye", then the connection closes; the room sees "* nick left #room (why)"
//	/help        the commands
//
// Anything else starting with '/' gets "! unknown command /x (try /help)"; greenline's /msg, /me,
// /who and /rooms are not implemented. As in greenline, rooms of more than 1,000 users do not
// announce arrivals, departures and nick changes to everyone (that would be quadratic while a
// room fills), a line longer than --max-line gets "! line too long (max N bytes)" and the
// connection is closed, and a reader whose queue overflows is dropped ("! too slow", best
// effort). Not here: telnet option handling, text sanitizing, flood control (the benchmark turns
// greenline's off), idle timeouts and graceful shutdown.
//
// # Shape
//
// The classic one (The Go Programming Language, section 8.10; Go's own chat examples): per
// connection a reader goroutine and a writer goroutine, and one broadcaster goroutine that owns
// all shared state (nicks, rooms, their members) and is the only sender on the clients' output
// channels. Readers parse lines and send events to the broadcaster; the broadcaster formats each
// line once and sends the same string to every recipient's channel; each writer drains its
// channel into a bufio.Writer, flushing when the channel is empty, so a backlog goes out in large
// writes.
//
// One broadcaster rather than a goroutine per room: nicks are unique across rooms and /join moves
// a user between two rooms, so per-room goroutines need a second owner for the nick table and a
// handshake for each move; a single owner needs no locks at all. Its cost, that all fan-out runs
// on one goroutine, is no cost where the benchmark runs Go, GOMAXPROCS=1.
//
// A slow reader must not stall the room: the broadcaster never blocks on a client. Each client's
// channel holds --out-queue messages (default 8192, about greenline's 1 MiB output queue at ~128
// bytes per message); a send that finds it full drops the client. The broadcaster sets the
// client's write deadline to now, which fails the writer's blocked (or next) write; the writer
// then tries "! too slow" for 100 ms and closes the connection, which ends the reader.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"greenline/loadtest/peers/go/internal/peer"
)

const (
	lobby = "#lobby"
	// Rooms above this size announce arrivals, departures and nick changes to the user alone
	// (greenline's kAnnounceMax).
	announceMax = 1000
	maxName     = 24
	nameRule    = "letters, digits, _ and -, at most 24"
)

const helpText = "* commands:\r\n" +
	"*   /nick NAME       change your nick (" + nameRule + ")\r\n" +
	"*   /join ROOM       move to ROOM (# optional), created if nobody is there\r\n" +
	"*   /part            go back to #lobby\r\n" +
	"*   /quit [reason]   leave\r\n" +
	"*   /help            this list\r\n" +
	"*   //text           send a line that starts with /\r\n"

func main() {
	port := flag.Int("port", 7171, "TCP port (0 picks a free one)")
	outQueue := flag.Int("out-queue", 8192, "messages queued per client before it is dropped as too slow")
	maxLine := flag.Int("max-line", 4096, "longest line in bytes, terminator excluded")
	flag.Parse()
	if flag.NArg() > 0 || *port < 0 || *port > 65535 || *outQueue < 1 || *maxLine < 1 {
		flag.Usage()
		os.Exit(2)
	}

	h := &hub{
		// Buffered so that a reader with several lines in hand does not wait for the broadcaster
		// after each one.
		events: make(chan event, 1024),
		rooms:  map[string]*room{key(lobby): {name: lobby}},
		nicks:  map[string]*client{},
	}
	go h.run()

	details := fmt.Sprintf("out queue %d messages, max line %d bytes", *outQueue, *maxLine)
	peer.Serve("go-chat", *port, details, func(conn *net.TCPConn) {
		c := &client{
			conn: conn,
			out:  make(chan string, *outQueue),
			done: make(chan struct{}),
		}
		go c.write()
		c.read(h, *maxLine)
	})
}

// A client is one connection.
type client struct {
	conn *net.TCPConn
	// Lines for the writer. Sent on by the broadcaster alone, which closes it when the client
	// leaves.
	out chan string
	// Closed when the writer is done.
	done chan struct{}
	// Set by the broadcaster when out overflowed: the writer says "! too slow" and closes.
	tooSlow atomic.Bool

	// Owned by the broadcaster.
	nick string
	room *room // nil once the client left or was dropped
}

type room struct {
	name    string // as whoever made the room typed it: "#Go"
	members []*client
}

type eventKind int

const (
	enter eventKind = iota // a new connection
	say                    // arg: text for the room
	nick                   // arg: the new nick, a valid name
	join                   // arg: the room, "#" + a valid name
	reply                  // arg: a line for the client alone (an error, /help)
	leave                  // the reader is done; arg: a last line for the client, maybe empty
)

type event struct {
	kind   eventKind
	c      *client
	arg    string
	reason string // leave: /quit's reason, maybe empty
}

// read is the connection's reader goroutine: it turns lines into events, its last event is always
// leave, and it closes the connection once the writer is done.
//
// After /quit or an overlong line the client may still be sending. Closing with unread input
// would make the kernel send a reset, which can destroy "* bye" or "! line too long" before the
// client (nc, for one) reads it. So the writer ends with a FIN (CloseWrite), and the reader reads
// and drops what still comes (until the client's EOF, 512 KiB or 500 ms) before closing, as
// net/http's server does (closeWriteAndWait).
func (c *client) read(h *hub, maxLine int) {
	defer c.conn.Close()
	h.events <- event{kind: enter, c: c}
	last, reason := c.readLines(h, maxLine)
	h.events <- event{kind: leave, c: c, arg: last, reason: reason}
	if last != "" {
		c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(c.conn, 512<<10))
	}
	// A writer still blocked on a client that does not read is ended by the close.
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
}

// readLines handles lines until EOF, an error, /quit or a line over maxLine; it returns the line
// to send last (empty after EOF or an error) and /quit's reason.
func (c *client) readLines(h *hub, maxLine int) (last, reason string) {
	s := bufio.NewScanner(c.conn)
	// Room for the longest acceptable line and its CRLF. ScanLines drops the CR.
	s.Buffer(make([]byte, 0, min(4096, maxLine+2)), maxLine+2)
	for s.Scan() {
		line := s.Bytes()
		if len(line) > maxLine {
			return lineTooLong(maxLine), ""
		}
		if len(bytes.Trim(line, " ")) == 0 {
			continue
		}
		if line[0] != '/' || len(line) > 1 && line[1] == '/' {
			text := line
			if line[0] == '/' {
				text = line[1:]
			}
			h.events <- event{kind: say, c: c, arg: string(text)}
			continue
		}
		verb, rest, _ := strings.Cut(string(line[1:]), " ")
		rest = strings.Trim(rest, " ")
		switch strings.ToLower(verb) {
		case "nick":
			if rest == "" {
				h.events <- replyEvent(c, "usage: /nick NAME")
			} else if !validName(rest) {
				h.events <- replyEvent(c, "invalid nick: "+rest+" ("+nameRule+")")
			} else {
				h.events <- event{kind: nick, c: c, arg: rest}
			}
		case "join":
			name := strings.TrimPrefix(rest, "#")
			if rest == "" {
				h.events <- replyEvent(c, "usage: /join ROOM")
			} else if !validName(name) {
				h.events <- replyEvent(c, "invalid room: "+rest+" ("+nameRule+"; # optional)")
			} else {
				h.events <- event{kind: join, c: c, arg: "#" + name}
			}
		case "part":
			if rest != "" {
				h.events <- replyEvent(c, "usage: /part")
			} else {
				h.events <- event{kind: join, c: c, arg: lobby}
			}
		case "help":
			if rest != "" {
				h.events <- replyEvent(c, "usage: /help")
			} else {
				h.events <- event{kind: reply, c: c, arg: helpText}
			}
		case "quit":
			return "* bye\r\n", rest
		default:
			h.events <- replyEvent(c, "unknown command /"+verb+" (try /help)")
		}
	}
	if errors.Is(s.Err(), bufio.ErrTooLong) {
		return lineTooLong(maxLine), ""
	}
	return "", ""
}

func replyEvent(c *client, errorText string) event {
	return event{kind: reply, c: c, arg: "! " + errorText + "\r\n"}
}

func lineTooLong(maxLine int) string {
	return "! line too long (max " + strconv.Itoa(maxLine) + " bytes)\r\n"
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > maxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// key is what nicks and rooms are compared by: ASCII lowercase.
func key(name string) string { return strings.ToLower(name) }

// write is the connection's writer goroutine. When out is closed it has written everything
// queued, and sends its FIN. When a write fails (the client is gone, or too slow: its write
// deadline was set to the past) it closes the connection, which ends the reader.
func (c *client) write() {
	defer close(c.done)
	w := bufio.NewWriter(c.conn)
	for line := range c.out {
		_, err := w.WriteString(line)
		if err == nil && len(c.out) == 0 {
			err = w.Flush()
		}
		if err != nil {
			if c.tooSlow.Load() {
				// Best effort: the socket is most likely full, which is why we are here.
				c.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				io.WriteString(c.conn, "! too slow\r\n")
			}
			c.conn.Close()
			return
		}
	}
	c.conn.CloseWrite()
}

// The hub is the broadcaster's state; only run's goroutine touches it.
type hub struct {
	events    chan event
	rooms     map[string]*room   // by key(name); #lobby always exists
	nicks     map[string]*client // by key(nick)
	nextGuest int
	slow      []*client // overflowed while handling the current event: dropped after it
}

// run is the broadcaster goroutine.
func (h *hub) run() {
	for e := range h.events {
		h.handle(e)
		// Dropping one announces its departure, which may overflow another.
		for len(h.slow) > 0 {
			c := h.slow[len(h.slow)-1]
			h.slow = h.slow[:len(h.slow)-1]
			if c.room != nil { // not already gone: a leave's last line may overflow too
				h.remove(c, "")
			}
		}
	}
}

func (h *hub) handle(e event) {
	c := e.c
	if e.kind == leave {
		if c.room != nil {
			if e.arg != "" {
				h.deliver(c, e.arg)
			}
			h.remove(c, e.reason)
		}
		close(c.out)
		return
	}
	if e.kind == enter {
		for {
			h.nextGuest++
			c.nick = "guest-" + strconv.Itoa(h.nextGuest)
			if h.nicks[key(c.nick)] == nil {
				break
			}
		}
		h.nicks[key(c.nick)] = c
		h.deliver(c, "* welcome to greenline chat: you are "+c.nick+" in "+lobby+
			" (/help lists the commands)\r\n")
		h.move(c, h.rooms[key(lobby)], "")
		return
	}
	if c.room == nil {
		return // dropped as too slow: its reader has not noticed yet
	}
	switch e.kind {
	case say:
		h.broadcast(c.room, "["+c.room.name+"] "+c.nick+": "+e.arg+"\r\n", c)
	case nick:
		k := key(e.arg)
		if other := h.nicks[k]; other != nil && other != c {
			h.deliver(c, "! nick taken: "+e.arg+"\r\n")
			return
		}
		if e.arg == c.nick {
			return
		}
		delete(h.nicks, key(c.nick))
		h.nicks[k] = c
		line := "* " + c.nick + " is now known as " + e.arg + "\r\n"
		c.nick = e.arg
		h.announce(c, line)
	case join:
		k := key(e.arg)
		if key(c.room.name) == k {
			h.deliver(c, "! already in "+c.room.name+"\r\n")
			return
		}
		to := h.rooms[k]
		if to == nil {
			to = &room{name: e.arg}
			h.rooms[k] = to
		}
		h.move(c, to, "")
	case reply:
		h.deliver(c, e.arg)
	}
}

// move takes c out of its room (if any) and into `to` (if not nil), telling both rooms.
func (h *hub) move(c *client, to *room, reason string) {
	if from := c.room; from != nil {
		for i, m := range from.members {
			if m == c {
				last := len(from.members) - 1
				from.members[i] = from.members[last]
				from.members[last] = nil
				from.members = from.members[:last]
				break
			}
		}
		c.room = nil
		if n := len(from.members); n > 0 && n < announceMax {
			line := "* " + c.nick + " left " + from.name
			if reason != "" {
				line += " (" + reason + ")"
			}
			h.broadcast(from, line+"\r\n", nil)
		}
		if len(from.members) == 0 && from.name != lobby {
			delete(h.rooms, key(from.name))
		}
	}
	if to != nil {
		to.members = append(to.members, c)
		c.room = to
		h.announce(c, "* "+c.nick+" joined "+to.name+"\r\n")
	}
}

// announce sends line to c's room, c included, or to c alone in a room over announceMax.
func (h *hub) announce(c *client, line string) {
	if len(c.room.members) <= announceMax {
		h.broadcast(c.room, line, nil)
	} else {
		h.deliver(c, line)
	}
}

// remove takes c out of the nick table and its room.
func (h *hub) remove(c *client, reason string) {
	delete(h.nicks, key(c.nick))
	h.move(c, nil, reason)
}

func (h *hub) broadcast(r *room, line string, except *client) {
	for _, m := range r.members {
		if m != except {
			h.deliver(m, line)
		}
	}
}

// deliver queues line for c without ever blocking: a full queue drops c.
func (h *hub) deliver(c *client, line string) {
	if c.tooSlow.Load() {
		return
	}
	select {
	case c.out <- line:
	default:
		c.tooSlow.Store(true)
		c.conn.SetWriteDeadline(time.Now()) // fails the writer's blocked or next write
		h.slow = append(h.slow, c)
	}
}
