// Command go-echo is the Go peer of greenline's echo service: the line echo server a Go
// programmer would write, run beside greenline by loadtest/bench.
//
//	go-echo [--port N] [--max-line BYTES]
//
// It prints "go-echo: listening on port N (...)" once listening and exits 0 on SIGINT or SIGTERM
// (package peer).
//
// The shape is the textbook one: a listener, a goroutine per connection, a 4 KiB bufio.Reader
// and a bufio.Writer. Each line goes back exactly as it came, terminator included. Replies are
// flushed when the reader has no more input buffered, so a client that pipelines lines gets them
// back in one write, and a client that sends one line at a time gets one write per line. Go sets
// TCP_NODELAY on every TCP connection by default.
//
// Lines follow greenline's rules: a line's length is counted without its terminator ("\n" or
// "\r\n"); a line longer than --max-line gets "! line too long (max N bytes)" and the connection
// is closed; after the client's EOF an unterminated last line still comes back. A line longer than
// the reader's buffer (possible when --max-line is above 4 KiB, or with a CRLF at the limit) is
// gathered from ReadSlice's ErrBufferFull pieces and echoed whole.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"greenline/loadtest/peers/go/internal/peer"
)

const readBufferSize = 4096

func main() {
	port := flag.Int("port", 7101, "TCP port (0 picks a free one)")
	maxLine := flag.Int("max-line", 4096, "longest line in bytes, terminator excluded")
	flag.Parse()
	if flag.NArg() > 0 || *port < 0 || *port > 65535 || *maxLine < 1 {
		flag.Usage()
		os.Exit(2)
	}

	peer.Serve("go-echo", *port, fmt.Sprintf("max line %d bytes", *maxLine), func(conn *net.TCPConn) {
		serve(conn, *maxLine)
	})
}

// serve echoes conn's lines until EOF, an error or a line over maxLine.
func serve(conn *net.TCPConn, maxLine int) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, readBufferSize)
	w := bufio.NewWriter(conn)
	var long []byte // a line longer than r's buffer, gathered piece by piece
	for {
		chunk, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			// maxLine bytes and a CR may still be waiting for their LF; one byte more may not.
			if len(long) > maxLine+1 {
				tooLong(conn, w, maxLine)
				return
			}
			continue
		}
		line := chunk
		if len(long) > 0 {
			long = append(long, chunk...)
			line = long
			long = long[:0]
		}
		if err == nil && contentLength(line) > maxLine || err != nil && len(line) > maxLine+1 {
			tooLong(conn, w, maxLine)
			return
		}
		// At EOF (err == io.EOF) line is the unterminated rest, if any: it goes back too.
		if _, werr := w.Write(line); werr != nil {
			return
		}
		if err != nil || r.Buffered() == 0 {
			if werr := w.Flush(); werr != nil || err != nil {
				return
			}
		}
	}
}

// contentLength is a line's length without its "\n" or "\r\n".
func contentLength(line []byte) int {
	n := len(line) - 1
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return n
}

// tooLong tells the client, then closes gracefully: FIN first, then it reads and drops what the
// client still sends (until its EOF, 512 KiB or 500 ms) before the caller closes. Closing with
// unread input would make the kernel send a reset, which can destroy the message before the
// client (nc, for one) reads it. net/http's server does the same (closeWriteAndWait).
func tooLong(conn *net.TCPConn, w *bufio.Writer, maxLine int) {
	fmt.Fprintf(w, "! line too long (max %d bytes)\r\n", maxLine)
	if w.Flush() != nil {
		return
	}
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(conn, 512<<10))
}
