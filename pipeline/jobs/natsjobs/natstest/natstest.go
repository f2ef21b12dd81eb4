// Package natstest starts the embedded JetStream that the cluster's tests
// run against, so that they talk to a real NATS server on loopback.
package natstest

import (
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Start starts a JetStream server on 127.0.0.1:port (-1: any free port)
// that keeps its streams in storeDir, and shuts it down when the test
// ends. A test may shut it down sooner; a second Shutdown does nothing.
func Start(t testing.TB, port int, storeDir string) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("embedded NATS server: %v", err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded NATS server did not start in 10 s")
	}
	return ns
}
