package main

import (
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/referee-project/referee/pipeline/jobs/natsjobs"
)

// natsOptions are the settings of a node's connection to a NATS JetStream
// cluster, shared by serve and worker.
type natsOptions struct {
	URL           string
	Creds         string
	TLSCA         string
	TLSCert       string
	TLSKey        string
	NodeName      string
	MaxJobs       int
	MaxInFlight   int
	MaxBytes      int64
	MaxStateBytes int64
	Retention     time.Duration
	AckWait       time.Duration
	MaxAttempts   int
	Replicas      int
}

// addNATSFlags adds the --nats flags; urlHelp says what --nats does for
// the command.
func addNATSFlags(f *pflag.FlagSet, opts *natsOptions, urlHelp string) {
	f.StringVar(&opts.URL, "nats", "", urlHelp)
	f.StringVar(&opts.Creds, "nats-creds", "", "NATS credentials file (JWT and NKey seed) to connect with")
	f.StringVar(&opts.TLSCA, "nats-tls-ca", "", "PEM file of the CA that signed the NATS servers' certificates")
	f.StringVar(&opts.TLSCert, "nats-tls-cert", "", "PEM client certificate for NATS (with --nats-tls-key)")
	f.StringVar(&opts.TLSKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	f.StringVar(&opts.NodeName, "node-name", "", "this node's name in the cluster's records and logs (default the host name)")
	f.IntVar(&opts.MaxJobs, "nats-max-jobs", natsjobs.DefaultMaxJobs, "jobs queued or being analysed in the whole cluster; a phrase beyond it waits to be submitted")
	f.IntVar(&opts.MaxInFlight, "nats-max-jobs-in-flight", natsjobs.DefaultMaxInFlight, "jobs analysed at once in the whole cluster, whatever the number of workers")
	f.Int64Var(&opts.MaxBytes, "nats-max-bytes", natsjobs.DefaultMaxBytes, "bytes the object store (videos, signals, artifacts) may hold; a phrase that would pass it fails")
	f.Int64Var(&opts.MaxStateBytes, "nats-max-state-bytes", natsjobs.DefaultMaxStateBytes, "bytes the key-value bucket of the phrases' records and results may hold")
	f.DurationVar(&opts.Retention, "nats-retention", natsjobs.DefaultRetention, "how long artifacts, records and dead letters stay in JetStream")
	f.DurationVar(&opts.AckWait, "nats-ack-wait", natsjobs.DefaultAckWait, "how long a job may go without news from its worker before another worker gets it (a live worker reports every third of it)")
	f.IntVar(&opts.MaxAttempts, "nats-max-attempts", natsjobs.DefaultMaxAttempts, "tries a job gets before it goes to the dead letters and its phrase fails")
	f.IntVar(&opts.Replicas, "nats-replicas", 1, "copies of each stream and bucket: 1, or 3 on a 3-server NATS cluster so that losing a server loses nothing")
}

// natsjobs returns the options of the connection opts describe.
func (opts natsOptions) natsjobs() natsjobs.Options {
	name := opts.NodeName
	if name == "" {
		name, _ = os.Hostname()
	}
	if name == "" {
		name = "referee-" + strconv.Itoa(os.Getpid())
	}
	return natsjobs.Options{
		URL:           opts.URL,
		Name:          name,
		CredsFile:     opts.Creds,
		TLSCA:         opts.TLSCA,
		TLSCert:       opts.TLSCert,
		TLSKey:        opts.TLSKey,
		MaxJobs:       opts.MaxJobs,
		MaxInFlight:   opts.MaxInFlight,
		MaxBytes:      opts.MaxBytes,
		MaxStateBytes: opts.MaxStateBytes,
		Retention:     opts.Retention,
		AckWait:       opts.AckWait,
		MaxAttempts:   opts.MaxAttempts,
		Replicas:      opts.Replicas,
	}
}
