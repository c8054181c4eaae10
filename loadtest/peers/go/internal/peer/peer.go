// Package peer is what the Go peers share: listening the way loadtest/bench expects, and the
// accept loop with its goroutine per connection.
package peer

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// Serve listens on TCP port (0 picks a free one), prints "NAME: listening on port N (GOMAXPROCS
// G, DETAILS)" on stdout, and runs handle in a new goroutine for each connection until SIGINT or
// SIGTERM; then it returns, and the program exits 0 (open connections end with the process).
func Serve(name string, port int, details string, handle func(*net.TCPConn)) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{Port: port})
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	// os.Stdout is unbuffered: the line is out before Printf returns.
	fmt.Printf("%s: listening on port %d (GOMAXPROCS %d, %s)\n",
		name, ln.Addr().(*net.TCPAddr).Port, runtime.GOMAXPROCS(0), details)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ln.Close() // fails the Accept below
	}()

	for {
		conn, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("%s: accept: %v", name, err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		go handle(conn)
	}
}
