package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
)

// addNATSFlags binds the --nats flags, which serve and worker share, to
// the fields of opts; urlHelp says what --nats does for the command.
func addNATSFlags(f *pflag.FlagSet, opts *natsjobs.Options, urlHelp string) {
	f.StringVar(&opts.URL, "nats", "", urlHelp)
	f.StringVar(&opts.CredsFile, "nats-creds", "", "NATS credentials file (JWT and NKey seed) to connect with")
	f.StringVar(&opts.TLSCA, "nats-tls-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
	f.StringVar(&opts.TLSCert, "nats-tls-cert", "", "PEM client certificate for NATS (with --nats-tls-key)")
	f.StringVar(&opts.TLSKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	f.StringVar(&opts.Name, "node-name", "", "this node's name in the cluster's records and logs (default the host name)")
	f.IntVar(&opts.MaxJobs, "nats-max-jobs", natsjobs.DefaultMaxJobs, "jobs queued or being analysed in the whole cluster; a phrase beyond it waits to be submitted")
	f.IntVar(&opts.MaxInFlight, "nats-max-jobs-in-flight", natsjobs.DefaultMaxInFlight, "jobs analysed at once in the whole cluster, whatever the number of workers")
	f.Int64Var(&opts.MaxBytes, "nats-max-bytes", natsjobs.DefaultMaxBytes, "bytes the object store (videos, signals, artifacts) may hold; a phrase that would pass it fails")
	f.Int64Var(&opts.MaxStateBytes, "nats-max-state-bytes", natsjobs.DefaultMaxStateBytes, "bytes the key-value bucket of the phrases' records and results may hold")
	f.DurationVar(&opts.Retention, "nats-retention", natsjobs.DefaultRetention, "how long artifacts, records and dead letters stay in JetStream")
	f.DurationVar(&opts.AckWait, "nats-ack-wait", natsjobs.DefaultAckWait, "how long a job may go without news from its worker before another worker gets it (a live worker reports every third of it)")
	f.IntVar(&opts.MaxAttempts, "nats-max-attempts", natsjobs.DefaultMaxAttempts, "tries a job gets before it goes to the dead letters and its phrase fails")
	f.IntVar(&opts.Replicas, "nats-replicas", 1, "copies of each stream and bucket: 1, or 3 on a 3-server NATS cluster so that losing a server loses nothing")
}

// openNATS connects to the NATS JetStream cluster opts describe, logging to
// log, named after the host when --node-name is not given. Its errors are
// usage errors that say which flags to check.
func openNATS(opts natsjobs.Options, log *slog.Logger) (*natsjobs.Conn, error) {
	if opts.Name == "" {
		opts.Name, _ = os.Hostname()
	}
	if opts.Name == "" {
		opts.Name = "referee-" + strconv.Itoa(os.Getpid())
	}
	opts.Logger = log
	conn, err := natsjobs.Open(opts)
	if err != nil {
		return nil, withExit(exitUsage, fmt.Errorf("%w (check the --nats flags or their REFEREE_* variables)", err))
	}
	return conn, nil
}
